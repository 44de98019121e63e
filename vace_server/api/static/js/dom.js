// Small DOM helpers shared by the page's modules.

import { badgeClass } from "./format.js";

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

export function showError(box, err, { info = false } = {}) {
  box.classList.toggle("info", info);
  const parts = [];
  if (err.code) {
    const code = document.createElement("strong");
    code.className = "error-code";
    code.textContent = err.code;
    parts.push(code);
  }
  const message = document.createElement("span");
  message.className = "error-message";
  message.textContent = err.message || "";
  parts.push(message);
  if (err.requestId) {
    const rid = document.createElement("small");
    rid.className = "error-request";
    rid.textContent = `request_id ${err.requestId}`;
    parts.push(rid);
  }
  box.replaceChildren(...parts);
  box.hidden = false;
}

export function hideError(box) {
  box.hidden = true;
  box.replaceChildren();
}

export function setBadge(el, status) {
  el.textContent = status;
  el.className = badgeClass(status);
}

/** Shows or hides a part of the form; a hidden part's controls are disabled (not sent). */
export function setPartActive(el, on) {
  el.hidden = !on;
  if (el instanceof HTMLFieldSetElement) {
    el.disabled = !on;
  } else {
    for (const control of $$("input, select, textarea, button", el)) control.disabled = !on;
  }
}

/** Whether a control is shown and enabled (a hidden or disabled control is not read). */
export function isShown(el) {
  return !el.closest("[hidden]") && !el.matches(":disabled");
}

/** `options`: [value, text, disabled?]; `selected` is kept when it is an enabled option. */
export function fillSelect(select, options, selected) {
  select.replaceChildren(
    ...options.map(([value, text, disabled = false]) => {
      const option = new Option(text, value);
      option.disabled = disabled;
      return option;
    }),
  );
  if (options.some(([value, , disabled]) => value === selected && !disabled)) select.value = selected;
}
