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

// Put the caret on a problem's line and column in its textarea.
export function goTo(textarea, line, column = 1) {
  const lines = textarea.value.split("\n");
  const row = Math.min(Math.max(line, 1), lines.length);
  const offset = lines.slice(0, row - 1).reduce((n, l) => n + l.length + 1, 0) + Math.max(column - 1, 0);
  textarea.focus();
  textarea.setSelectionRange(offset, Math.min(offset + 1, textarea.value.length));
}

// controls: the textarea of a problem's path ("prompts.user" → User prompt) for a "Go to" button.
export function render(list, problems, warnings = [], controls = () => null) {
  const item = (p, attrs, prefix) => {
    const control = p.line ? controls(p.path || "") : null;
    return h("li", attrs, `${prefix}${where(p) ? `${where(p)}: ` : ""}${p.message}`, control ? [" ", h("button", {
      type: "button", class: "secondary", onclick: () => goTo(control, p.line, p.column || 1),
    }, `Go to line ${p.line}`)] : null);
  };
  replace(list, problems.map((p) => item(p, { role: "alert" }, "")),
    warnings.map((p) => item(p, { class: "muted" }, "warning — ")));
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
