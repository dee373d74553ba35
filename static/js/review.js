/* Review queue: keyboard shortcuts, the help overlay, a word diff for edits, and NER tagging.
 *
 * Plain JavaScript, no libraries. Item and candidate text only ever reaches the page through
 * textContent / createTextNode, never as HTML. Forms work without this file; it only adds keys,
 * timing and the richer widgets. NER offsets count Unicode code points, like Python's str, so the
 * spans the server checks always match the text.
 */
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  let shownAt = Date.now();
  let ner = null;

  const panel = () => document.getElementById("panel");
  const answerForm = () => panel() && panel().querySelector("form.answer");
  const help = () => panel() && panel().querySelector("#help");

  function typing(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    const inert = ["radio", "checkbox", "button", "submit", "hidden", "reset"];
    return el.tagName === "INPUT" && !inert.includes(el.type);
  }

  function submit(form) {
    if (form) form.requestSubmit();
  }

  function choose(input) {
    if (!input) return false;
    input.checked = input.type === "checkbox" ? !input.checked : true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function toggleHelp(show) {
    const overlay = help();
    if (!overlay) return;
    overlay.hidden = show === undefined ? !overlay.hidden : !show;
    if (!overlay.hidden) overlay.querySelector("button").focus();
    else panel().focus();
  }

  const handlers = {
    rate(ev, key, p) {
      return /^[1-5]$/.test(key) && choose(p.querySelector(`input[name=rating][value="${key}"]`));
    },
    compare(ev, key, p) {
      const choice = { a: "a", b: "b", t: "tie", x: "both_bad" }[key];
      return Boolean(choice) && choose(p.querySelector(`input[name=choice][value="${choice}"]`));
    },
    edit(ev, key, p) {
      if (key !== "e") return false;
      const editor = p.querySelector("textarea[name=text]");
      editor.focus();
      editor.setSelectionRange(editor.value.length, editor.value.length);
      return true;
    },
    label(ev, key, p) {
      if (!/^[1-9]$/.test(key)) return false;
      return choose(p.querySelectorAll("input[name=labels]")[Number(key) - 1]);
    },
    ner(ev, key) {
      return ner !== null && ner.key(ev, key);
    },
  };

  document.addEventListener("keydown", function (ev) {
    const p = panel();
    if (!p || !p.dataset.mode) return;
    const overlay = help();
    const target = ev.target;
    if (ev.key === "Escape") {
      if (overlay && !overlay.hidden) toggleHelp(false);
      else if (typing(target)) {
        target.blur();
        p.focus();
      } else return;
      ev.preventDefault();
      return;
    }
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "Enter") {
      ev.preventDefault();
      submit(answerForm());
      return;
    }
    if (typing(target) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "?") {
      ev.preventDefault();
      toggleHelp();
      return;
    }
    if (overlay && !overlay.hidden) return;
    const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
    if (key === "Enter") {
      if (["BUTTON", "A", "SUMMARY"].includes(target.tagName)) return; // their own action
      ev.preventDefault();
      submit(answerForm());
      return;
    }
    if (key === "s") {
      ev.preventDefault();
      submit(p.querySelector("form.skip"));
      return;
    }
    const mode = p.dataset.mode === "label" && p.dataset.ner ? "ner" : p.dataset.mode;
    if (handlers[mode] && handlers[mode](ev, key, p)) ev.preventDefault();
  });

  // Time spent on the task goes with the answer.
  document.addEventListener(
    "submit",
    function (ev) {
      const field = ev.target.querySelector && ev.target.querySelector("input[name=duration_ms]");
      if (field) field.value = String(Date.now() - shownAt);
    },
    true,
  );

  // --- Word diff for edits -----------------------------------------------------------------------

  const MAX_DIFF_CELLS = 1500000;

  function words(text) {
    return text.match(/\s+|[^\s]+/g) || [];
  }

  /* [[op, text], ...] with op "eq", "del" or "ins": the longest common subsequence of words, after
     the common head and tail are set aside (edits are usually local, which keeps the table small). */
  function wordDiff(before, after) {
    const x = words(before);
    const y = words(after);
    let head = 0;
    while (head < x.length && head < y.length && x[head] === y[head]) head++;
    let tail = 0;
    while (
      tail < x.length - head &&
      tail < y.length - head &&
      x[x.length - 1 - tail] === y[y.length - 1 - tail]
    )
      tail++;
    const a = x.slice(head, x.length - tail);
    const b = y.slice(head, y.length - tail);
    const ops = [];
    const push = (op, text) => {
      if (!text) return;
      const last = ops[ops.length - 1];
      if (last && last[0] === op) last[1] += text;
      else ops.push([op, text]);
    };
    push("eq", x.slice(0, head).join(""));
    if (a.length * b.length > MAX_DIFF_CELLS) {
      push("del", a.join(""));
      push("ins", b.join(""));
    } else {
      const n = a.length;
      const m = b.length;
      const table = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
      for (let i = n - 1; i >= 0; i--) {
        for (let j = m - 1; j >= 0; j--) {
          table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
        }
      }
      let i = 0;
      let j = 0;
      while (i < n && j < m) {
        if (a[i] === b[j]) {
          push("eq", a[i]);
          i++;
          j++;
        } else if (table[i + 1][j] >= table[i][j + 1]) push("del", a[i++]);
        else push("ins", b[j++]);
      }
      while (i < n) push("del", a[i++]);
      while (j < m) push("ins", b[j++]);
    }
    push("eq", x.slice(x.length - tail).join(""));
    return ops;
  }

  function initDiff(p) {
    const editor = p.querySelector("textarea[name=text]");
    const out = p.querySelector("#edit-diff");
    const source = p.querySelector("#edit-original");
    if (!editor || !out || !source) return;
    const original = JSON.parse(source.textContent);
    let pending = 0;
    const draw = () => {
      pending = 0;
      out.textContent = "";
      const ops = wordDiff(original, editor.value);
      if (!ops.some((op) => op[0] !== "eq")) {
        out.textContent = "No changes yet: submitting keeps the answer as it is.";
        return;
      }
      for (const [op, text] of ops) {
        const node = op === "eq" ? document.createTextNode(text) : document.createElement(op);
        if (op !== "eq") node.textContent = text;
        out.appendChild(node);
      }
    };
    editor.addEventListener("input", () => {
      if (!pending) pending = window.requestAnimationFrame(draw);
    });
    draw();
  }

  // --- NER tagging ---------------------------------------------------------------------------------

  const WORD_CHAR = /[\p{L}\p{N}\p{M}_]/u;
  const SPACE = /\s/u;

  function Ner(p) {
    const box = p.querySelector(".ner");
    const holder = box.querySelector(".ner-text");
    const list = p.querySelector(".span-list");
    const field = p.querySelector("textarea[name=spans]");
    const chars = Array.from(JSON.parse(document.getElementById(box.dataset.textId).textContent));
    const suggested = new Set(
      JSON.parse(document.getElementById(box.dataset.suggestedId).textContent || "[]").map(
        (s) => `${s.start}:${s.end}:${s.label}`,
      ),
    );
    const labels = Array.from(p.querySelectorAll(".label-key")).map((el) => el.dataset.label);
    const allowOverlap = box.dataset.overlap === "1";
    const tokens = [];
    for (let i = 0; i < chars.length; ) {
      if (SPACE.test(chars[i])) {
        i++;
        continue;
      }
      let j = i + 1;
      if (WORD_CHAR.test(chars[i])) while (j < chars.length && WORD_CHAR.test(chars[j])) j++;
      tokens.push([i, j]);
      i = j;
    }
    let spans = [];
    try {
      spans = JSON.parse(field.value || "[]");
    } catch (err) {
      spans = [];
    }
    spans = (Array.isArray(spans) ? spans : [])
      .filter((s) => s && Number.isInteger(s.start) && Number.isInteger(s.end) && s.start < s.end)
      .map((s) => ({ start: s.start, end: s.end, label: String(s.label) }));
    let cursor = 0;
    let anchor = null;
    let mouseRange = null;

    const spanKey = (s) => `${s.start}:${s.end}:${s.label}`;
    const textOf = (s) => chars.slice(s.start, s.end).join("");

    function selection() {
      if (mouseRange) return mouseRange;
      if (!tokens.length) return null;
      const from = anchor === null ? cursor : anchor;
      return [tokens[Math.min(from, cursor)][0], tokens[Math.max(from, cursor)][1]];
    }

    function save() {
      spans.sort((s, t) => s.start - t.start || s.end - t.end);
      field.value = JSON.stringify(spans.map((s) => ({ start: s.start, end: s.end, label: s.label })));
      field.dispatchEvent(new Event("change", { bubbles: true }));
      render();
    }

    function add(index) {
      const label = labels[index];
      const range = selection();
      if (label === undefined || !range) return false;
      let [start, end] = range;
      while (start < end && SPACE.test(chars[start])) start++;
      while (end > start && SPACE.test(chars[end - 1])) end--;
      if (start >= end) return true;
      // Tagging a tagged stretch again changes its label.
      spans = spans.filter((s) =>
        allowOverlap ? !(s.start === start && s.end === end) : s.end <= start || s.start >= end,
      );
      spans.push({ start, end, label });
      anchor = null;
      mouseRange = null;
      window.getSelection().removeAllRanges();
      save();
      return true;
    }

    function remove(span) {
      spans = spans.filter((s) => s !== span);
      save();
    }

    function render() {
      const cuts = new Set([0, chars.length]);
      for (const s of spans) cuts.add(s.start).add(s.end);
      for (const t of tokens) cuts.add(t[0]).add(t[1]);
      const edges = Array.from(cuts).sort((a, b) => a - b);
      const range = mouseRange ? null : selection();
      const current = tokens[cursor];
      const fragment = document.createDocumentFragment();
      for (let k = 0; k + 1 < edges.length; k++) {
        const start = edges[k];
        const end = edges[k + 1];
        const piece = document.createElement("span");
        piece.dataset.start = start;
        piece.dataset.end = end;
        piece.textContent = chars.slice(start, end).join("");
        const covering = spans.filter((s) => s.start <= start && end <= s.end);
        if (covering.length) {
          const span = covering[0];
          piece.classList.add("ent", `ent-${Math.max(labels.indexOf(span.label), 0) % 5}`);
          piece.dataset.label = span.label;
          if (covering.some((s) => suggested.has(spanKey(s)))) piece.classList.add("suggested");
          if (covering.some((s) => s.end === end)) piece.classList.add("last");
          piece.title = `${span.label} (click to remove)`;
        }
        if (range && start >= range[0] && end <= range[1] && !SPACE.test(piece.textContent)) {
          piece.classList.add("sel");
        }
        if (current && start >= current[0] && end <= current[1]) piece.classList.add("cur");
        fragment.appendChild(piece);
      }
      holder.textContent = "";
      holder.appendChild(fragment);
      list.textContent = "";
      if (!spans.length) {
        const empty = document.createElement("li");
        empty.textContent = "No tags yet.";
        list.appendChild(empty);
      }
      for (const span of spans) {
        const item = document.createElement("li");
        item.dataset.label = span.label;
        const name = document.createElement("strong");
        name.textContent = span.label;
        const quote = document.createElement("span");
        quote.textContent = ` “${textOf(span)}” `;
        item.append(name, quote);
        if (suggested.has(spanKey(span))) {
          const mark = document.createElement("span");
          mark.className = "pill suggestion";
          mark.textContent = "suggested";
          item.append(mark);
        }
        const drop = document.createElement("button");
        drop.type = "button";
        drop.textContent = "×";
        drop.setAttribute("aria-label", `Remove ${span.label} “${textOf(span)}”`);
        drop.addEventListener("click", () => remove(span));
        item.append(drop);
        list.appendChild(item);
      }
    }

    // Where a DOM position falls in the text, in code points; null outside the text.
    function offsetOf(node, offset) {
      if (node.nodeType === Node.TEXT_NODE) {
        const piece = node.parentElement.closest("[data-start]");
        if (!piece || !holder.contains(piece)) return null;
        return Number(piece.dataset.start) + Array.from(node.data.slice(0, offset)).length;
      }
      if (node === holder) {
        const child = holder.childNodes[offset];
        return child ? Number(child.dataset.start) : chars.length;
      }
      const piece = node.closest && node.closest("[data-start]");
      if (!piece || !holder.contains(piece)) return null;
      return Number(offset === 0 ? piece.dataset.start : piece.dataset.end);
    }

    holder.addEventListener("mouseup", () => {
      const sel = window.getSelection();
      mouseRange = null;
      if (!sel || sel.isCollapsed) return;
      const a = offsetOf(sel.anchorNode, sel.anchorOffset);
      const b = offsetOf(sel.focusNode, sel.focusOffset);
      if (a !== null && b !== null && a !== b) mouseRange = [Math.min(a, b), Math.max(a, b)];
    });

    holder.addEventListener("click", (ev) => {
      const sel = window.getSelection();
      if (sel && !sel.isCollapsed) return;
      const piece = ev.target.closest(".ent");
      if (!piece) return;
      const start = Number(piece.dataset.start);
      const end = Number(piece.dataset.end);
      const hit = spans
        .filter((s) => s.start <= start && end <= s.end)
        .sort((s, t) => s.end - s.start - (t.end - t.start))[0];
      if (hit) remove(hit);
    });

    function key(ev, k) {
      if (k === "ArrowRight" || k === "ArrowLeft") {
        if (!tokens.length) return true;
        mouseRange = null;
        if (ev.shiftKey) {
          if (anchor === null) anchor = cursor;
        } else anchor = null;
        cursor = Math.max(0, Math.min(tokens.length - 1, cursor + (k === "ArrowRight" ? 1 : -1)));
        render();
        return true;
      }
      if (/^[1-9]$/.test(k)) return add(Number(k) - 1);
      if (k === "Delete" || k === "Backspace") {
        const range = selection();
        if (range) {
          spans = spans.filter((s) => s.end <= range[0] || s.start >= range[1]);
          anchor = null;
          mouseRange = null;
          save();
        }
        return true;
      }
      return false;
    }

    render();
    return { key };
  }

  // --- Each time a task panel appears --------------------------------------------------------------

  function init() {
    const p = panel();
    if (!p) return;
    shownAt = Date.now();
    p.querySelectorAll(".js-help").forEach((b) => b.addEventListener("click", () => toggleHelp()));
    p.querySelectorAll(".js-help-close").forEach((b) => b.addEventListener("click", () => toggleHelp(false)));
    initDiff(p);
    ner = p.dataset.ner ? Ner(p) : null;
    if (!p.contains(document.activeElement)) p.focus({ preventScroll: true });
  }

  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:load", (ev) => {
    if (ev.target && ev.target.id === "panel") init();
  });
})();
