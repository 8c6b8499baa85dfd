// The back office's script. Pages work without it except for signing,
// which must happen in the operator's browser. It does three things:
//   - live parts: an element with data-live="URL" is refreshed from the
//     server's fragment at URL every data-live-ms (the page stays usable
//     with the keyboard: a part holding the focus is left alone);
//   - keys: an operator's Ed25519 key is made with WebCrypto,
//     non-extractable, and kept in IndexedDB; only its public half leaves;
//   - signing: the payloads the server hands out are checked against the
//     request on the page, signed byte for byte and posted back.
"use strict";

(() => {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content || "";
  const csrf = () => meta("csrf-token");
  const zh = () => meta("lang") === "zh-CN";
  const msg = (en, cn) => (zh() ? cn : en);

  const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
  const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

  async function fetchJSON(url, opts = {}) {
    const r = await fetch(url, { credentials: "same-origin", ...opts,
      headers: { Accept: "application/json", "X-CSRF-Token": csrf(), ...(opts.headers || {}) } });
    let body = {};
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
    return body;
  }

  // --- live parts -------------------------------------------------------
  function live(el) {
    const ms = Math.max(1000, parseInt(el.dataset.liveMs, 10) || 3000);
    const tick = async () => {
      if (document.hidden || el.contains(document.activeElement)) return;
      try {
        const r = await fetch(el.dataset.live, { credentials: "same-origin" });
        if (!r.ok) return;
        const html = await r.text();
        // Keep the rows an operator ticked across the refresh.
        const ticked = new Set([...el.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value));
        const open = new Set([...el.querySelectorAll("details[open]")].map((d) => d.closest("tr")?.id));
        el.innerHTML = html;
        // A part that says its state changed (a request approved, done)
        // brings the whole page up to date: its actions depend on it.
        const was = el.dataset.state, now = el.querySelector("[data-state]")?.dataset.state;
        if (was && now && was !== now) {
          const q = new URLSearchParams(location.search);
          q.delete("msg");
          location.replace(location.pathname + (q.toString() ? "?" + q : ""));
          return;
        }
        el.querySelectorAll("input[type=checkbox]").forEach((c) => { if (ticked.has(c.value)) c.checked = true; });
        el.querySelectorAll("details").forEach((d) => { if (open.has(d.closest("tr")?.id)) d.open = true; });
        el.dispatchEvent(new CustomEvent("live-updated", { bubbles: true }));
      } catch (_) { /* the next tick tries again */ }
    };
    setInterval(tick, ms);
  }

  // --- keys in IndexedDB ------------------------------------------------
  const DB = "posagent-backoffice", STORE = "keys";

  function db() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  async function loadKey(operator) {
    const d = await db();
    return new Promise((resolve, reject) => {
      const req = d.transaction(STORE).objectStore(STORE).get("op:" + operator);
      req.onsuccess = () => resolve(req.result || null);
      req.onerror = () => reject(req.error);
    });
  }

  async function saveKey(operator, pair) {
    const d = await db();
    return new Promise((resolve, reject) => {
      const tx = d.transaction(STORE, "readwrite");
      tx.objectStore(STORE).put(pair, "op:" + operator);
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
    });
  }

  async function publicB64(pair) {
    return b64(await crypto.subtle.exportKey("raw", pair.publicKey));
  }

  async function fingerprint(pubB64) {
    const h = new Uint8Array(await crypto.subtle.digest("SHA-256", unb64(pubB64)));
    const hex = [...h.slice(0, 16)].map((x) => x.toString(16).padStart(2, "0")).join("");
    return hex.match(/.{4}/g).join(" ");
  }

  async function keysPage(btn) {
    const operator = btn.dataset.operator;
    const out = document.getElementById("local-key");
    const server = document.getElementById("my-key")?.dataset.pub || "";
    const show = async () => {
      const pair = await loadKey(operator);
      if (!pair) {
        out.textContent = msg("This browser holds no signing key of yours.", "此浏览器中没有您的签名密钥。");
        return;
      }
      const pub = await publicB64(pair);
      const fp = await fingerprint(pub);
      out.dataset.pub = pub;
      out.textContent = server === pub
        ? msg(`This browser holds this key (fingerprint ${fp}).`, `此浏览器持有该密钥（指纹 ${fp}）。`)
        : msg(`This browser holds another key (fingerprint ${fp}): it is not the one HQ knows.`,
          `此浏览器持有另一把密钥（指纹 ${fp}），不是总部登记的密钥。`);
    };
    btn.addEventListener("click", async () => {
      btn.disabled = true;
      try {
        // Non-extractable: the private key can sign in this browser and
        // can never be read out of it, not even by this script.
        const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
        const pub = await publicB64(pair);
        await saveKey(operator, pair);
        await fetchJSON("/keys/propose", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ pub }) });
        location.reload();
      } catch (e) {
        out.textContent = msg("Could not make a key: ", "无法生成密钥：") + e.message;
        btn.disabled = false;
      }
    });
    try { await show(); } catch (e) { out.textContent = e.message; }
  }

  // --- signing ------------------------------------------------------------
  // canonical writes JSON with sorted keys, so two encodings of the same
  // args compare equal.
  function canonical(v) {
    if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
    if (v && typeof v === "object") {
      return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canonical(v[k])).join(",") + "}";
    }
    return JSON.stringify(v);
  }

  async function sign(btn) {
    const out = document.getElementById("sign-status");
    const operator = meta("operator");
    const job = btn.dataset.signJob, kid = btn.dataset.kid, total = parseInt(btn.dataset.count, 10) || 0;
    const wantArgs = canonical(JSON.parse(btn.dataset.args || "{}"));
    btn.disabled = true;
    try {
      const pair = await loadKey(operator);
      if (!pair) throw new Error(msg("this browser holds no signing key of yours (see My key)", "此浏览器中没有您的签名密钥（见“我的密钥”）"));
      if (await publicB64(pair) !== btn.dataset.pub) {
        throw new Error(msg(`this browser's key is not your registered key ${kid}`, `此浏览器的密钥不是您登记的密钥 ${kid}`));
      }
      let after = "", done = 0;
      for (;;) {
        const page = await fetchJSON(`/jobs/${encodeURIComponent(job)}/payloads?limit=200&after=${encodeURIComponent(after)}`);
        if (!page.commands.length) break;
        const signatures = [];
        for (const c of page.commands) {
          const bytes = unb64(c.payload);
          const p = JSON.parse(new TextDecoder().decode(bytes));
          // Sign only the command this page shows: its type, its args,
          // the terminal and the id the server names.
          if (p.type !== btn.dataset.type || canonical(p.args || {}) !== wantArgs || p.serial !== c.serial || p.id !== c.cmd_id) {
            throw new Error(msg(`command ${c.cmd_id} is not the one shown on this page: not signed`,
              `命令 ${c.cmd_id} 与本页所示不符，未签名`));
          }
          const sig = await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, bytes);
          signatures.push({ cmd_id: c.cmd_id, sig: b64(sig) });
        }
        const res = await fetchJSON(`/jobs/${encodeURIComponent(job)}/signatures`, { method: "POST",
          headers: { "Content-Type": "application/json" }, body: JSON.stringify({ kid, signatures }) });
        done += signatures.length;
        after = page.commands[page.commands.length - 1].cmd_id;
        out.textContent = msg(`Signed ${done} of ${total}…`, `已签名 ${done}/${total}…`);
        // The last signature may start the job: there is nothing more to
        // ask for (the server no longer hands out its payloads).
        if (res.remaining === 0) break;
      }
      out.textContent = msg(`Signed ${done} of ${total}.`, `已签名 ${done}/${total}。`);
      location.assign(`${location.pathname}?msg=${encodeURIComponent(btn.dataset.done)}`);
    } catch (e) {
      out.textContent = msg("Not signed: ", "未签名：") + e.message;
      out.classList.add("field-error");
      btn.disabled = false;
    }
  }

  // --- the unbind form: force's warning only when force is chosen --------
  function unsettledForm() {
    const warn = document.getElementById("force-warning");
    const force = document.getElementById("u-force");
    if (!warn || !force) return;
    const update = () => { warn.hidden = !force.checked; };
    document.querySelectorAll("input[name=unsettled]").forEach((r) => r.addEventListener("change", update));
    update();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-live]").forEach(live);
    const create = document.getElementById("create-key");
    if (create) keysPage(create);
    document.querySelectorAll("button[data-sign-job]").forEach((b) => b.addEventListener("click", () => sign(b)));
    document.querySelectorAll("button[data-back]").forEach((b) => {
      b.hidden = false;
      b.addEventListener("click", () => history.back());
    });
    unsettledForm();
    document.getElementById("errors")?.focus();
  });
})();
