// The agent desk: presence buttons, the queue list, the screen pop (pushed by Server-Sent Events), the browser
// phone behind a tiny adapter (tests substitute window.IVR_FAKE_DEVICE for Twilio's Device), and the wrap-up.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  let current = null; // the CallSid on screen

  async function post(url, data) {
    const body = new FormData();
    Object.entries(data || {}).forEach(([k, v]) => body.append(k, v));
    const response = await fetch(url, { method: "POST", body, headers: { "X-CSRFToken": csrf } });
    return response.json();
  }

  function showState(presence) {
    $("state").textContent = presence.state.replace("_", " ");
    $("state").dataset.state = presence.state;
  }

  // --- the phone: Twilio's Device, or a stand-in the browser tests install ------------------------------------
  const phone = {
    call: null,
    async start() {
      if (window.IVR_FAKE_DEVICE) { this.device = window.IVR_FAKE_DEVICE; }
      else {
        const answer = await fetch("/agent/token").then((r) => r.json());
        if (!answer.token || !window.Twilio) { return; } // the page already says the phone is not configured
        this.device = new window.Twilio.Device(answer.token, { codecPreferences: ["opus", "pcmu"] });
        await this.device.register();
      }
      this.device.on("incoming", (call) => { this.call = call; $("accept").disabled = false; });
    },
    accept() { if (this.call) { this.call.accept(); } },
  };

  // --- the screen pop -----------------------------------------------------------------------------------------
  function item(list, text, cls) {
    const li = document.createElement("li");
    li.textContent = text;
    if (cls) { li.className = cls; }
    list.appendChild(li);
  }

  const REASONS = {
    intent: "the bot recognised the request; it needs a person", agent_requested: "the caller asked for a person",
    no_match: "the bot did not understand, retries used up", no_input: "the caller was not heard, retries used up",
    out_of_scope: "a request the bot does not handle", slot_not_understood: "details not understood, retries used up",
    self_service_failed: "self-service failed", callback_failed: "call-back number not understood",
  };

  function clock(seconds) { return seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`; }

  async function pop(call) {
    const response = await fetch(`/agent/calls/${encodeURIComponent(call)}`);
    if (!response.ok) { return; }
    const data = await response.json();
    const c = data.context || {};
    current = call;
    $("call").hidden = false;
    $("wrapup").hidden = true;
    $("transfer").hidden = true;
    $("accept").hidden = false;
    $("call-status").textContent = "ringing";
    $("summary").textContent = c.summary || "No details were collected for this caller.";
    $("caller").textContent = c.caller || "unknown";
    $("intent").textContent = c.intent_label ? `${c.intent_label} (${Math.round((c.confidence || 0) * 100)} %)` : "not recognised";
    const labels = data.labels || {};
    $("alternatives").textContent = (c.alternatives || []).filter((a) => a.score >= 0.05)
      .map((a) => `${labels[a.intent] || a.intent} (${Math.round(a.score * 100)} %)`).join(", ") || "none";
    const verified = new Set(c.verified_slots || []);
    $("slots").textContent = Object.entries(c.slots || {}).map(([k, v]) =>
      `${k.replace("_", " ")}: ${v} (${verified.has(k) ? "verified by self-service" : "not verified"})`).join("; ") || "none";
    $("reason").textContent = REASONS[c.reason] || (c.reason ? `a fault (${c.reason.replace(/_/g, " ")})` : "unknown");
    if (c.agent_requested && c.reason !== "agent_requested") { $("reason").textContent += "; the caller asked for a person"; }
    if ((c.further || []).length) { $("reason").textContent += `; also mentioned: ${c.further.map((f) => labels[f] || f).join(", ")}`; }
    const last = (c.transcript || []).slice(-1)[0];
    const inBot = last ? last.at - c.started_at : 0;
    $("times").textContent = `${clock(inBot)} with the bot` + (data.queued_at ? `, ${clock(data.now - data.queued_at)} in the queue` : "");
    $("mood").textContent = c.mood || "neutral";
    $("callback").textContent = c.callback_number ? `requested on ${c.callback_number}` : "no";
    for (const id of ["history", "notes", "transcript"]) { $(id).replaceChildren(); }
    (data.history || []).forEach((h) => item($("history"),
      `${new Date(h.at * 1000).toLocaleString()}: ${labels[h.intent] || h.intent || "not recognised"} → ${h.outcome || "?"}`));
    if (!(data.history || []).length) { item($("history"), "none"); }
    (data.notes || []).forEach((n) => item($("notes"), `${n.agent}: ${n.text}`));
    if (!(data.notes || []).length) { item($("notes"), "none"); }
    (c.transcript || []).slice(-12).forEach((t) => item($("transcript"),
      `${new Date(t.at * 1000).toLocaleTimeString()} ${t.speaker === "caller" ? "Caller" : "Bot"}: ${t.text}`, t.speaker));
  }

  function onEvent(event) {
    const data = JSON.parse(event.data);
    if (data.type === "ringing") { pop(data.call); showState({ state: "ringing" }); return; }
    if (data.call !== current) { return; }
    if (data.type === "connected") {
      $("call-status").textContent = "connected"; $("accept").hidden = true; $("transfer").hidden = false;
      showState({ state: "busy" });
    }
    if (data.type === "ended") { wrapUp("ended"); }
    if (data.type === "transfer_answered") {
      $("transfer-status").textContent = `${data.agent} is on the line: talk, then complete or cancel`;
      $("transfer-complete").hidden = false;
    }
    if (data.type === "transfer_failed") {
      $("transfer-status").textContent = "not answered: the caller is back with you";
      $("transfer-cancel").hidden = true;
    }
    if (data.type === "missed" || data.type === "caller_gone") {
      $("call-status").textContent = data.type === "missed" ? "missed: you are not ready" : "the caller hung up";
      $("accept").hidden = true;
      showState({ state: data.type === "missed" ? "missed" : "available" });
    }
  }

  function wrapUp(status) {
    $("call-status").textContent = status;
    $("transfer").hidden = true;
    $("wrapup").hidden = false;
    showState({ state: "wrap_up" });
  }

  async function refreshQueues() {
    const response = await fetch("/agent/queues");
    if (!response.ok) { return; }
    const rows = await response.json();
    $("queues").replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      [r.queue, clock(r.waiting_s), r.intent || "—", r.locale].forEach((text) => {
        const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
      });
      return tr;
    }));
  }

  $("available").addEventListener("click", async () => showState(await post("/agent/state", { state: "available" })));
  $("away").addEventListener("click", async () => showState(await post("/agent/state", { state: "offline" })));
  $("accept").addEventListener("click", () => { phone.accept(); $("call-status").textContent = "answering"; });
  $("transfer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = Object.fromEntries(new FormData(event.target).entries());
    const answer = await post(`/agent/calls/${encodeURIComponent(current)}/transfer`, form);
    if (answer.status === "ringing") {
      $("transfer-status").textContent = `ringing ${answer.agent}; the caller is on hold`;
      $("transfer-cancel").hidden = false;
    } else if (answer.status === "transferred") { wrapUp(`transferred to ${answer.queue}`); }
    else { $("transfer-status").textContent = answer.error || "not possible"; }
  });
  $("transfer-complete").addEventListener("click", async () => {
    const answer = await post(`/agent/calls/${encodeURIComponent(current)}/transfer/complete`);
    if (answer.status === "transferred") { wrapUp(`transferred to ${answer.agent}`); }
  });
  $("transfer-cancel").addEventListener("click", async () => {
    await post(`/agent/calls/${encodeURIComponent(current)}/transfer/cancel`);
    $("transfer-status").textContent = "cancelled: the caller is back with you";
    $("transfer-cancel").hidden = true; $("transfer-complete").hidden = true;
  });
  $("wrapup").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = Object.fromEntries(new FormData(event.target).entries());
    showState(await post(`/agent/calls/${encodeURIComponent(current)}/wrap-up`, form));
    $("call").hidden = true;
    current = null;
  });

  new EventSource("/agent/events").onmessage = onEvent;
  phone.start();
  refreshQueues();
  setInterval(refreshQueues, 5000);
})();
