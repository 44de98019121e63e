// One media input: a URL, or a local file uploaded through the temporary-upload flow.

import { $, $$ } from "./dom.js";
import { state } from "./state.js";
import { choiceText } from "./text.js";

const ACCEPT = {
  image: "image/jpeg,image/png,image/bmp,image/tiff,image/webp,.jpg,.jpeg,.png,.bmp,.tif,.tiff,.webp",
  video: "video/mp4,.mp4",
};

export class MediaSlot {
  /** `roles`: the obj_or_bg choices when this is a reference image (a role select is shown). */
  constructor(container, { field, kind, title, hint, roles = null, onRemove = null }) {
    const id = ++state.slotSeq;
    this.field = field;
    this.kind = kind;
    this.required = false;
    this.enabled = true;
    this.root = $("#slot-template").content.firstElementChild.cloneNode(true);
    this.root.dataset.field = field;
    this.titleEl = $(".slot-title", this.root);
    this.titleEl.id = `slot-${id}-title`;
    this.root.setAttribute("role", "group");
    this.root.setAttribute("aria-labelledby", this.titleEl.id);
    this.reqEl = $(".req", this.root);
    this.group = $(".segmented", this.root);
    this.radios = $$("input[type=radio]", this.root);
    for (const radio of this.radios) {
      radio.name = `slot-${id}-source`;
      radio.addEventListener("change", () => this.sync());
    }
    this.urlInput = $(".slot-url", this.root);
    this.urlInput.id = `slot-${id}-url`;
    this.fileInput = $(".slot-file", this.root);
    this.fileInput.id = `slot-${id}-file`;
    this.fileInput.accept = ACCEPT[kind];
    this.hintEl = $(".slot-hint", this.root);
    this.hintEl.textContent = hint;
    this.removeBtn = $(".remove", this.root);
    if (onRemove) this.removeBtn.addEventListener("click", () => onRemove(this));
    this.roleSelect = null;
    if (roles) this.addRoleSelect(id, roles);
    this.setTitle(title);
    container.append(this.root);
    this.sync();
  }

  addRoleSelect(id, roles) {
    const label = document.createElement("label");
    label.className = "role";
    label.append("Role ");
    const select = document.createElement("select");
    select.id = `slot-${id}-role`;
    for (const value of roles) select.append(new Option(choiceText("obj_or_bg", value), value));
    label.append(select);
    $(".slot-extra", this.root).append(label);
    this.roleSelect = select;
    this.roleLabel = label;
  }

  setTitle(title) {
    this.title = title;
    this.titleEl.textContent = title;
    this.group.setAttribute("aria-label", `${title} source`);
    this.urlInput.setAttribute("aria-label", `${title} URL`);
    this.fileInput.setAttribute("aria-label", `${title} file`);
    this.removeBtn.setAttribute("aria-label", `Remove ${title.toLowerCase()}`);
    if (this.roleSelect) this.roleSelect.setAttribute("aria-label", `${title} role`);
  }

  setRequired(required) {
    this.required = required;
    this.reqEl.hidden = !required;
    this.sync();
  }

  /** A slot hidden on its own (an extra reference image) must not take part in validation. */
  setEnabled(enabled) {
    this.enabled = enabled;
    this.root.hidden = !enabled;
    for (const radio of this.radios) radio.disabled = !enabled;
    if (this.roleSelect) this.roleSelect.disabled = !enabled || this.roleLabel.hidden;
    this.sync();
  }

  get mode() {
    return this.radios.find((r) => r.checked)?.value || "url";
  }

  get file() {
    return this.fileInput.files && this.fileInput.files[0] ? this.fileInput.files[0] : null;
  }

  get url() {
    return this.urlInput.value.trim();
  }

  get role() {
    return this.roleSelect ? this.roleSelect.value : "obj";
  }

  get isActive() {
    // Inside a hidden or disabled part of the form, the slot does not count.
    return !this.root.closest("[hidden]") && !this.root.closest("fieldset:disabled");
  }

  get isEmpty() {
    return this.mode === "file" ? !this.file : !this.url;
  }

  /** The input to focus when this slot is the problem. */
  get focusTarget() {
    return this.mode === "file" ? this.fileInput : this.urlInput;
  }

  /** The URL to send: `uploaded` maps slots to their oss:// URLs (after upload). */
  value(uploaded) {
    if (this.mode === "file") {
      if (!this.file) return null;
      return uploaded ? uploaded.get(this) || null : `oss://<uploaded on submit>/${this.file.name}`;
    }
    return this.url || null;
  }

  /** Empties the slot (URL and file), back to the URL source. */
  clear() {
    this.urlInput.value = "";
    this.fileInput.value = "";
    for (const radio of this.radios) radio.checked = radio.value === "url";
    this.sync();
  }

  sync() {
    const byFile = this.mode === "file";
    this.urlInput.hidden = byFile;
    this.urlInput.disabled = byFile || !this.enabled;
    this.fileInput.hidden = !byFile;
    this.fileInput.disabled = !byFile || !this.enabled;
    this.urlInput.required = this.required && !byFile;
    this.fileInput.required = this.required && byFile;
  }
}
