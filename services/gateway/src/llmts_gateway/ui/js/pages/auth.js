// Sign in and register (OAuth buttons when the server has providers configured).
import * as api from "../api.js";
import { alertBox, field, h, replace } from "../dom.js";

function form(main, { title, action, submit, other }) {
  const email = h("input", { type: "email", name: "email", autocomplete: "email", required: true });
  const password = h("input", {
    type: "password", name: "password", required: true, minlength: 10,
    autocomplete: submit === "Register" ? "new-password" : "current-password",
  });
  const error = alertBox();
  const button = h("button", { type: "submit" }, submit);
  const oauth = h("div", { class: "oauth" });
  const el = h("form", { class: "auth", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.textContent = "";
    try {
      await action({ email: email.value.trim(), password: password.value });
      location.hash = "#/templates";
    } catch (e) {
      error.textContent = e.message;
      button.disabled = false;
    }
  } }, h("h1", {}, title), field("Email", email), field("Password", password), error, button, other, oauth);
  replace(main, el);
  email.focus();
  api.get("/auth/oauth").then(({ providers }) => {
    for (const name of providers) {
      oauth.append(h("p", {}, h("a", { href: `/auth/oauth/${encodeURIComponent(name)}`, class: "button" },
        `Sign in with ${name[0].toUpperCase()}${name.slice(1)}`)));
    }
  }).catch(() => {});
}

export function loginPage(main) {
  form(main, { title: "Sign in", action: api.login, submit: "Sign in",
    other: h("p", {}, h("a", { href: "#/register" }, "Create an account")) });
}

export function registerPage(main) {
  form(main, { title: "Create an account", action: api.register, submit: "Register",
    other: h("p", {}, "At least 10 characters, not a common password. ",
      h("a", { href: "#/login" }, "Sign in instead")) });
}
