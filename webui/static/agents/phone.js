// 坐席工作台: the browser phone (JsSIP over WSS to FreeSWITCH), presence buttons and the
// screen pop fed by Server-Sent Events (/agents/me/events ← Redis cc:agent:<user_id>).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("phone-data").textContent);
  const T = data.i18n;
  const $ = (id) => document.getElementById(id);
  const fmt = (text, vars) => text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : ""));

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": data.csrf},
      body: JSON.stringify(body),
    });
  }

  function showError(text) {
    const box = $("phone-error");
    box.textContent = text;
    box.classList.toggle("d-none", !text);
  }

  function showMicError(text) {
    const box = $("mic-error");
    box.textContent = text;
    box.classList.toggle("d-none", !text);
  }

  // --- presence ----------------------------------------------------------------------------
  const STATE_CLASS = {available: "text-bg-success", ringing: "text-bg-warning",
    in_call: "text-bg-danger", wrap_up: "text-bg-info", break: "text-bg-warning",
    offline: "text-bg-secondary"};

  function renderPresence(p) {
    const badge = $("presence-state");
    badge.textContent = T[p.state] || p.state;
    badge.className = "badge fs-6 " + (STATE_CLASS[p.state] || "text-bg-secondary");
    badge.dataset.state = p.state;
    let reason = "";
    if (p.reason && p.reason.indexOf("missed:") === 0) {
      reason = fmt(T.missed_break, {n: p.reason.split(":")[1]});
    } else if (p.after) {
      reason = fmt(T.after, {state: T[p.after] || p.after});
    }
    $("presence-reason").textContent = reason;
  }

  document.querySelectorAll("[data-state]").forEach((button) => {
    button.addEventListener("click", async () => {
      const resp = await post(data.presence, {state: button.dataset.state});
      if (!resp.ok) { showError(T.presence_failed); return; }
      renderPresence((await resp.json()).presence);
    });
  });

  // --- ring sound (synthesised: 450 Hz, 1 s on, 4 s off) -------------------------------------
  let audioCtx = null;
  let ringTimer = null;
  function beep() {
    try {
      audioCtx = audioCtx || new (window.AudioContext || window.webkitAudioContext)();
      const osc = audioCtx.createOscillator();
      const gain = audioCtx.createGain();
      osc.frequency.value = 450;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(audioCtx.destination);
      osc.start();
      osc.stop(audioCtx.currentTime + 1);
    } catch (e) { /* no audio output: the page still shows the call */ }
  }
  function startRing() { stopRing(); beep(); ringTimer = setInterval(beep, 5000); }
  function stopRing() { if (ringTimer) { clearInterval(ringTimer); ringTimer = null; } }
  document.addEventListener("click", () => { if (audioCtx) audioCtx.resume(); });

  // --- screen pop ----------------------------------------------------------------------------
  let popCall = null;
  function fillTable(table, obj) {
    const body = table.querySelector("tbody");
    body.replaceChildren();
    Object.entries(obj || {}).forEach(([k, v]) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      const td = document.createElement("td");
      th.textContent = k;
      td.textContent = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
      tr.append(th, td);
      body.append(tr);
    });
  }

  function renderPop(msg) {
    const pop = msg.pop || {};
    const card = $("screen-pop");
    if (popCall !== msg.call_uuid) {
      popCall = msg.call_uuid;
      $("pop-notes").value = "";
      $("pop-saved").textContent = "";
    }
    card.hidden = false;
    card.dataset.call = msg.call_uuid;
    $("pop-empty").hidden = true;
    $("pop-phone").textContent = pop.phone || "";
    $("pop-task").textContent = pop.task || "";
    $("pop-grade").textContent = pop.grade || "—";
    const state = $("pop-state");
    state.textContent = T["pop_" + msg.state] || msg.state;
    state.className = "badge " + ({ringing: "text-bg-warning", answered: "text-bg-success",
      missed: "text-bg-secondary"}[msg.state] || "text-bg-secondary");
    const tags = $("pop-tags");
    tags.replaceChildren(...(pop.tags || []).map((t) => {
      const span = document.createElement("span");
      span.className = "badge text-bg-light border me-1";
      span.textContent = t;
      return span;
    }));
    fillTable($("pop-vars"), pop.variables);
    $("pop-crm-wrap").hidden = !pop.crm;
    fillTable($("pop-crm"), pop.crm);
    const transcript = $("pop-transcript");
    transcript.replaceChildren(...(pop.transcript || []).map((turn) => {
      const div = document.createElement("div");
      const who = document.createElement("b");
      who.textContent = (T[turn.speaker] || turn.speaker) + ": ";
      div.append(who, document.createTextNode(turn.text || ""));
      return div;
    }));
    transcript.scrollTop = transcript.scrollHeight;
  }

  $("pop-save").addEventListener("click", async () => {
    if (!popCall) return;
    const resp = await post(data.notes.replace("__UUID__", encodeURIComponent(popCall)),
      {notes: $("pop-notes").value});
    $("pop-saved").textContent = resp.ok ? T.saved : T.save_failed;
    $("pop-saved").className = "small " + (resp.ok ? "text-success" : "text-danger");
  });

  // --- live events (SSE) ---------------------------------------------------------------------
  const events = new EventSource(data.events);
  events.onmessage = (e) => {
    let msg;
    try { msg = JSON.parse(e.data); } catch (err) { return; }
    if (msg.type === "presence" && msg.state) renderPresence(msg);
    else if (msg.type === "screen_pop") renderPop(msg);
  };

  // --- the phone -----------------------------------------------------------------------------
  let session = null;
  let muted = false;
  let held = false;
  const buttons = ["btn-answer", "btn-hangup", "btn-mute", "btn-hold"];

  function callUi(state) {
    $("call-state").textContent = state;
    const incoming = session && session.direction === "incoming" && !session.isEstablished();
    $("btn-answer").disabled = !incoming;
    $("btn-hangup").disabled = !session;
    $("btn-mute").disabled = !(session && session.isEstablished());
    $("btn-hold").disabled = !(session && session.isEstablished());
  }

  function setRegistration(registered, label) {
    const badge = $("reg-status");
    badge.textContent = label;
    badge.className = "badge " + (registered ? "text-bg-success" : "text-bg-secondary");
    badge.dataset.registered = registered ? "1" : "0";
  }

  async function checkMicrophone() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showMicError(T.mic_insecure);
      return false;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: false});
      stream.getTracks().forEach((t) => t.stop());
      showMicError("");
      return true;
    } catch (err) {
      showMicError(err && err.name === "NotFoundError" ? T.mic_missing : T.mic_denied);
      return false;
    }
  }

  function attachRemote(s) {
    s.on("peerconnection", (ev) => {
      ev.peerconnection.addEventListener("track", (t) => { $("remote-audio").srcObject = t.streams[0]; });
    });
  }

  async function start() {
    buttons.forEach((id) => { $(id).disabled = true; });
    await checkMicrophone();
    const cfg = await (await fetch(data.config, {credentials: "same-origin"})).json();
    if (!cfg.extension || !cfg.password) { showError(T.no_extension); return; }
    if (typeof JsSIP === "undefined") { showError(T.no_jssip); return; }
    setRegistration(false, T.registering);
    let socket;
    try {
      socket = new JsSIP.WebSocketInterface(cfg.wss_url);
    } catch (err) {
      showError(fmt(T.ws_failed, {url: cfg.wss_url}));
      setRegistration(false, T.not_registered);
      return;
    }
    const ua = new JsSIP.UA({
      sockets: [socket], uri: "sip:" + cfg.extension + "@" + cfg.domain,
      password: cfg.password, display_name: cfg.display_name, register: true,
      session_timers: false, connection_recovery_min_interval: 2,
      connection_recovery_max_interval: 30,
    });
    window.ccPhone = ua;
    ua.on("registered", () => {
      setRegistration(true, T.registered);
      showError("");
      post(data.registration, {registered: true});
    });
    ua.on("unregistered", () => {
      setRegistration(false, T.not_registered);
      post(data.registration, {registered: false});
    });
    ua.on("registrationFailed", (e) => {
      setRegistration(false, T.not_registered);
      showError(fmt(T.reg_failed, {cause: e.cause || ""}));
      post(data.registration, {registered: false});
    });
    ua.on("disconnected", () => {
      setRegistration(false, T.not_registered);
      showError(fmt(T.ws_failed, {url: cfg.wss_url}));
      post(data.registration, {registered: false});
    });
    ua.on("newRTCSession", (e) => {
      if (e.originator !== "remote") return;
      if (session) { e.session.terminate({status_code: 486}); return; }
      session = e.session;
      muted = false; held = false;
      attachRemote(session);
      startRing();
      callUi(T.incoming);
      const end = () => { stopRing(); session = null; callUi(T.ended); };
      session.on("accepted", () => { stopRing(); callUi(T.talking); });
      session.on("confirmed", () => callUi(T.talking));
      session.on("ended", end);
      session.on("failed", end);
      session.on("hold", () => callUi(T.on_hold));
      session.on("unhold", () => callUi(T.talking));
    });
    ua.start();
  }

  $("btn-answer").addEventListener("click", async () => {
    if (!session) return;
    if (!(await checkMicrophone())) return;
    session.answer({mediaConstraints: {audio: true, video: false}});
  });
  $("btn-hangup").addEventListener("click", () => { if (session) session.terminate(); });
  $("btn-mute").addEventListener("click", () => {
    if (!session) return;
    muted = !muted;
    if (muted) session.mute({audio: true}); else session.unmute({audio: true});
    $("btn-mute").querySelector("span").textContent = muted ? T.unmute : T.mute;
  });
  $("btn-hold").addEventListener("click", () => {
    if (!session) return;
    held = !held;
    if (held) session.hold(); else session.unhold();
    $("btn-hold").querySelector("span").textContent = held ? T.resume : T.hold;
  });

  start();
})();
