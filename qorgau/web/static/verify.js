// qorgau — check an audit inclusion proof in the browser, independently of the server.
//
// The page carries the entry's leaf bytes, the audit path and the signed tree head. This script
// recomputes the RFC 6962 root with WebCrypto (leaf = SHA-256(0x00 ‖ leaf bytes), node =
// SHA-256(0x01 ‖ left ‖ right)), following RFC 9162 §2.1.3.2, compares it with the signed root, and
// checks the tree head's Ed25519 signature when the browser supports it. Without JavaScript the page
// still shows the server's verdict.
(function () {
  "use strict";

  function hexToBytes(hex) {
    if (hex.length % 2 !== 0 || /[^0-9a-f]/i.test(hex)) throw new Error("bad hex");
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }

  function bytesToHex(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += bytes[i].toString(16).padStart(2, "0");
    return s;
  }

  function concat(parts) {
    var total = parts.reduce(function (n, p) { return n + p.length; }, 0);
    var out = new Uint8Array(total);
    var at = 0;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  function leafHash(leaf) { return sha256(concat([new Uint8Array([0]), leaf])); }
  function nodeHash(left, right) { return sha256(concat([new Uint8Array([1]), left, right])); }

  // RFC 9162 §2.1.3.2: returns the root the proof leads to, or null if the proof is malformed.
  async function rootFromInclusionProof(index, treeSize, leaf, path) {
    if (!(index >= 0 && index < treeSize)) return null;
    var fn = index;
    var sn = treeSize - 1;
    var r = await leafHash(leaf);
    for (var i = 0; i < path.length; i++) {
      var p = path[i];
      if (sn === 0) return null;
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }

  function sameBytes(a, b) {
    if (!a || !b || a.length !== b.length) return false;
    var diff = 0;
    for (var i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }

  function show(el, text, state) {
    el.hidden = false;
    el.textContent = text;
    el.classList.remove("verdict-pending", "verdict-ok", "verdict-bad");
    el.classList.add(state === true ? "verdict-ok" : state === false ? "verdict-bad" : "verdict-pending");
  }

  // The tree head message is rebuilt here from the displayed fields, not taken from the server.
  async function checkSignature(el, d) {
    var message = new TextEncoder().encode(
      "qorgau-sth/v1\n" + d.treeSize + "\n" + d.root.toLowerCase() + "\n" + d.signedAt + "\n");
    try {
      var key = await crypto.subtle.importKey("raw", hexToBytes(d.publicKey), { name: "Ed25519" }, false, ["verify"]);
      var ok = await crypto.subtle.verify({ name: "Ed25519" }, key, hexToBytes(d.signature), message);
      show(el, ok ? "✓ " + d.msgSigOk : "✗ " + d.msgSigBad, ok);
    } catch (e) {
      show(el, d.msgSigUnsupported, null);
    }
  }

  async function verify(section) {
    if (section.dataset.checked) return;
    section.dataset.checked = "1";
    var d = section.dataset;
    var out = section.querySelector("[data-browser-result]");
    var sigOut = section.querySelector("[data-browser-signature]");
    var rootOut = section.querySelector("[data-browser-root]");
    if (!window.crypto || !crypto.subtle) {
      show(out, d.msgNocrypto, null);
      return;
    }
    show(out, d.msgWorking, null);
    try {
      var path = d.path ? d.path.split(",").map(hexToBytes) : [];
      var root = await rootFromInclusionProof(Number(d.entryId), Number(d.treeSize), hexToBytes(d.leaf), path);
      if (root && rootOut) rootOut.textContent = bytesToHex(root);
      var ok = sameBytes(root, hexToBytes(d.root));
      show(out, (ok ? "✓ " : "✗ ") + (ok ? d.msgOk : d.msgBad), ok);
      out.dataset.verified = ok ? "true" : "false";
    } catch (e) {
      show(out, "✗ " + d.msgBad, false);
      out.dataset.verified = "false";
    }
    if (sigOut) await checkSignature(sigOut, d);
  }

  function scan(root) {
    (root || document).querySelectorAll("[data-proof]").forEach(verify);
  }

  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  // Results swapped in by htmx (the verify form) are checked as soon as they settle.
  document.addEventListener("htmx:afterSettle", function (ev) { scan(ev.target); });
})();
