// Validation problems at line/column: the API's 422 details, the validate report, and local JSON syntax errors.
import { h, replace } from "./dom.js";

function where(p) {
  const at = p.line ? `line ${p.line}${p.column ? `, column ${p.column}` : ""}` : "";
  const path = p.path || (Array.isArray(p.loc) ? p.loc.filter((x) => x !== "body").join(".") : "");
  return [path, at].filter(Boolean).join(", ");
}

export function fromError(error) {
  const details = Array.isArray(error.details) ? error.details : [];
  return details.length ? details.map((d) => ({ ...d, message: d.msg || d.message })) : [{ message: error.message }];
}

export function render(list, problems, warnings = []) {
  replace(list,
    problems.map((p) => h("li", { role: "alert" }, `${where(p) ? `${where(p)}: ` : ""}${p.message}`)),
    warnings.map((p) => h("li", { class: "muted" }, `warning — ${where(p) ? `${where(p)}: ` : ""}${p.message}`)));
}

// JSON.parse with the position of a syntax error as line/column of the text.
export function parseJson(text, path) {
  if (!text.trim()) return { value: undefined };
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    const m = /line (\d+) column (\d+)/.exec(e.message) || /position (\d+)/.exec(e.message);
    let line = null;
    let column = null;
    if (m && m.length === 3) [line, column] = [Number(m[1]), Number(m[2])];
    else {  // a position, or the end of the text for "Unexpected end of JSON input"
      const before = text.slice(0, m ? Number(m[1]) : text.length).split("\n");
      [line, column] = [before.length, before[before.length - 1].length + 1];
    }
    return { problem: { path, line, column, message: e.message.replace(/\s*\(line \d+ column \d+\)/, "") } };
  }
}
