// The live page of `victron-bms serve --http`. Read-only: it only listens.
// Everything shown comes from devices anyone nearby can imitate, so every value goes into the
// page as text (textContent), never as HTML: there is no innerHTML in this file.
"use strict";

(function () {
  const THEME_KEY = "victron-ble-bms.theme";
  const WATCHDOG_MS = 40000; // the server sends a ping every 15 s
  // A bar's scale: empty at 2.8 V (the battery's default cell under-voltage alarm), full at
  // 3.65 V (a full LiFePO4 cell); a cell outside is drawn at the end of the bar.
  const CELL_LOW_V = 2.8;
  const CELL_HIGH_V = 3.65;

  const state = { devices: new Map(), banks: [], staleAfter: 60 };
  let source = null;
  let lastMessage = 0;
  let everConnected = false;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function num(value, digits) {
    if (typeof value !== "number" || !isFinite(value)) return null;
    return value.toFixed(digits).replace("-", "\u2212");
  }

  function ago(seconds) {
    if (seconds < 2) return "just now";
    if (seconds < 90) return Math.round(seconds) + " s ago";
    if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
    return Math.round(seconds / 3600) + " h ago";
  }

  // --- theme --------------------------------------------------------------------------------

  function setTheme(theme, remember) {
    const night = theme === "night";
    document.documentElement.dataset.theme = night ? "night" : "day";
    const button = document.getElementById("mode");
    button.textContent = night ? "Day" : "Night";
    button.setAttribute("aria-pressed", night ? "true" : "false");
    button.title = night ? "Switch to day mode" : "Switch to night mode (red on black)";
    const meta = document.querySelector('meta[name="theme-color"]');
    if (meta) meta.setAttribute("content", night ? "#000000" : "#0b3d5c");
    if (remember) {
      try { localStorage.setItem(THEME_KEY, night ? "night" : "day"); } catch (e) { /* private mode */ }
    }
  }

  function storedTheme() {
    try { return localStorage.getItem(THEME_KEY) || "day"; } catch (e) { return "day"; }
  }

  // --- one device ---------------------------------------------------------------------------

  const FIGURES = [
    ["battery_voltage_v", "Voltage", "V", 2],
    ["soc_pct", "State of charge", "%", 0],
    ["battery_current_a", "Current", "A", 1],
    ["battery_temperature_c", "Temperature", "\u00b0C", 0],
    ["temperature_c", "Temperature", "\u00b0C", 0],
    ["consumed_ah", "Consumed", "Ah", 1],
    ["system_voltage_v", "System", "V", 2],
    ["alternator_voltage_v", "Alternator", "V", 2],
  ];

  function figure(label, value, unit) {
    const box = el("div", value === null ? "fig unknown" : "fig");
    box.appendChild(el("span", "k", label));
    const v = el("span", "v", value === null ? "unknown" : value);
    box.appendChild(v);
    if (value !== null && unit) box.appendChild(el("span", "u", unit));
    return box;
  }

  function timeToGo(minutes) {
    if (typeof minutes !== "number" || !isFinite(minutes)) return null;
    const h = Math.floor(minutes / 60);
    return h > 0 ? h + " h " + (minutes % 60) + " min" : minutes + " min";
  }

  function cellVolts(value) {
    if (typeof value === "number") return value;
    if (value === "<2.61") return 2.61;
    if (value === ">3.85") return 3.85;
    return null;
  }

  function cells(obj) {
    const list = obj.cell_voltages_v;
    if (!Array.isArray(list)) return null;
    const present = [];
    list.forEach(function (value, i) { if (value !== null) present.push([i + 1, value]); });
    if (!present.length) return null;
    const wrap = el("div", "cellblock");
    const row = el("div", "cells");
    row.setAttribute("aria-label", "cell voltages");
    const volts = present.map(function (p) { return cellVolts(p[1]); });
    const known = volts.filter(function (v) { return v !== null; });
    const low = Math.min.apply(null, known);
    const high = Math.max.apply(null, known);
    const distinct = known.length > 1 && high > low;
    const lows = [], highs = [];
    volts.forEach(function (v, k) {
      if (distinct && v === low) lows.push(present[k][0]);
      if (distinct && v === high) highs.push(present[k][0]);
    });
    // The lowest and highest cells are marked when they stand out (at most half the cells), so
    // 3 equal cells and 1 low one read as "1 low"; the line below always names both.
    const half = present.length / 2;
    present.forEach(function (p, k) {
      const v = volts[k];
      let cls = "cell";
      let mark = "";
      if (lows.indexOf(p[0]) >= 0 && lows.length <= half) { cls += " low"; mark = "\u25bc low"; }
      else if (highs.indexOf(p[0]) >= 0 && highs.length <= half) { cls += " high"; mark = "\u25b2 high"; }
      const cell = el("div", cls);
      cell.dataset.cell = String(p[0]);
      cell.appendChild(el("span", "mark", mark));
      const tube = el("div", "tube");
      const fill = el("div", "fill");
      const frac = v === null ? 0 : (v - CELL_LOW_V) / (CELL_HIGH_V - CELL_LOW_V);
      fill.style.height = Math.max(3, Math.min(100, frac * 100)).toFixed(1) + "%";
      tube.appendChild(fill);
      cell.appendChild(tube);
      cell.appendChild(el("span", "cv", typeof p[1] === "number" ? p[1].toFixed(2) : p[1]));
      cell.appendChild(el("span", "ci", "cell " + p[0]));
      row.appendChild(cell);
    });
    wrap.appendChild(row);
    const cellsText = function (list) { return (list.length > 1 ? "cells " : "cell ") + list.join(", "); };
    let text;
    if (!known.length) text = "Cell voltages unknown";
    else if (!distinct) text = "All cells " + low.toFixed(2) + " V";
    else {
      const spread = typeof obj.cell_spread_mv === "number" ? obj.cell_spread_mv : Math.round((high - low) * 1000);
      text = "Lowest " + low.toFixed(2) + " V (" + cellsText(lows) + ") \u00b7 highest " +
        high.toFixed(2) + " V (" + cellsText(highs) + ") \u00b7 spread " + spread + " mV";
    }
    wrap.appendChild(el("p", "spread", text));
    return wrap;
  }

  function yesNo(dl, label, value) {
    dl.appendChild(el("dt", null, label));
    if (value === true) dl.appendChild(el("dd", "yes", "allowed"));
    else if (value === false) dl.appendChild(el("dd", "no", "not allowed"));
    else dl.appendChild(el("dd", "unknown", "unknown"));
  }

  function codes(obj) {
    const details = obj.code_details;
    if (details === null) {
      return el("p", "codes-unknown", "Alarms and warnings: unknown (part of the frame not received) \u2014 not an all-clear.");
    }
    if (!Array.isArray(details)) return null;
    if (!details.length) return el("p", "clear", "No active alarm or warning.");
    const list = el("ul", "codes");
    details.forEach(function (code) {
      const item = el("li", "code " + String(code.severity || ""));
      item.dataset.code = String(code.id);
      const title = el("div", "t");
      title.appendChild(el("span", "id", code.id));
      title.appendChild(document.createTextNode(String(code.title || "")));
      item.appendChild(title);
      if (code.explanation) item.appendChild(el("p", "explanation", code.explanation));
      if (code.remedy) item.appendChild(el("p", "remedy", code.remedy));
      list.appendChild(item);
    });
    return list;
  }

  function severityClass(obj) {
    if (obj.key_status && obj.key_status !== "ok") return "nokey";
    if (obj.code_details === null) return "sev-unknown";
    let worst = "";
    (obj.code_details || []).forEach(function (c) {
      if (c.severity === "alarm" || c.severity === "error") worst = "alarm";
      else if (c.severity === "warning" && worst !== "alarm") worst = "warning";
    });
    return worst ? "sev-" + worst : "sev-ok";
  }

  function card(entry) {
    const obj = entry.obj;
    const node = el("article", "card device " + severityClass(obj));
    node.dataset.address = String(obj.address);
    const head = el("div", "head");
    head.appendChild(el("h3", "name", obj.name || obj.product || obj.address));
    const age = el("span", "age");
    head.appendChild(age);
    node.appendChild(head);
    const sub = [obj.product, obj.address].filter(function (x) { return x; }).join(" \u00b7 ");
    node.appendChild(el("p", "sub", sub));
    entry.ageNode = age;

    if (obj.key_status && obj.key_status !== "ok") {
      const hint = obj.key_status === "no key"
        ? " \u2014 add its key: victron-bms keys add " + obj.address + " <key>"
        : "";
      node.appendChild(el("p", "note keymsg", String(obj.message || obj.key_status) + hint));
    }
    if (obj.suspect) node.appendChild(el("p", "note suspect", "Last reading ignored: " + obj.suspect + " \u2014 showing the last good values."));
    if (obj.provisional) node.appendChild(el("p", "sub", "Record layout provisional: values may be wrong."));

    const figs = el("div", "figures");
    FIGURES.forEach(function (f) {
      if (!(f[0] in obj)) return;
      figs.appendChild(figure(f[1], num(obj[f[0]], f[3]), f[2]));
    });
    if ("ttg_min" in obj) figs.appendChild(figure("Time to go", timeToGo(obj.ttg_min), ""));
    if (figs.childNodes.length) node.appendChild(figs);

    const cellBlock = cells(obj);
    if (cellBlock) node.appendChild(cellBlock);

    const dl = el("dl", "facts");
    if ("balancer_status" in obj) {
      dl.appendChild(el("dt", null, "Balancer"));
      const b = obj.balancer_status;
      dl.appendChild(el("dd", b ? "" : "unknown", b ? String(b).replace(/_/g, " ") : "unknown"));
    }
    if ("allowed_to_charge" in obj) yesNo(dl, "Charging", obj.allowed_to_charge);
    if ("allowed_to_discharge" in obj) yesNo(dl, "Discharging", obj.allowed_to_discharge);
    if (dl.childNodes.length) node.appendChild(dl);

    const c = codes(obj);
    if (c) node.appendChild(c);
    return node;
  }

  // --- the list -----------------------------------------------------------------------------

  function ageOf(entry, now) {
    return (typeof entry.obj.age_s === "number" ? entry.obj.age_s : 0) + (now - entry.at) / 1000;
  }

  function refreshAge(entry, now) {
    const age = ageOf(entry, now);
    const stale = entry.obj.stale === true || age > state.staleAfter;
    if (entry.ageNode) {
      entry.ageNode.textContent = stale ? "no reading for " + ago(age).replace(" ago", "") : ago(age);
    }
    if (entry.node) entry.node.classList.toggle("stale", stale);
  }

  const RANK = { "sev-alarm": 0, "sev-warning": 1, "sev-unknown": 2 };

  function sortKey(obj) {
    // Problems first (alarms, warnings, unknown codes), then the devices with a key, by name.
    const rank = RANK[severityClass(obj)];
    return [rank === undefined ? 3 : rank, obj.keyed ? 0 : 1,
      String(obj.name || "~").toLowerCase(), String(obj.address)];
  }

  function compare(a, b) {
    const x = sortKey(a.obj), y = sortKey(b.obj);
    for (let i = 0; i < x.length; i++) { if (x[i] < y[i]) return -1; if (x[i] > y[i]) return 1; }
    return 0;
  }

  function put(obj, now) {
    const old = state.devices.get(obj.address);
    const entry = { obj: obj, at: now, node: null, ageNode: null };
    entry.node = card(entry);
    refreshAge(entry, now);
    state.devices.set(obj.address, entry);
    const list = document.getElementById("devices");
    if (old && old.node && old.node.parentNode === list && compare(old, entry) === 0) {
      list.replaceChild(entry.node, old.node);
    } else {
      if (old && old.node) old.node.remove();
      placeInOrder(list, entry);
    }
  }

  function placeInOrder(list, entry) {
    let before = null;
    state.devices.forEach(function (other) {
      if (other === entry || !other.node || other.node.parentNode !== list) return;
      if (compare(entry, other) < 0 && (!before || compare(other, before) < 0)) before = other;
    });
    list.insertBefore(entry.node, before ? before.node : null);
  }

  function remove(address) {
    const old = state.devices.get(address);
    if (old && old.node) old.node.remove();
    state.devices.delete(address);
  }

  // --- banks (several batteries and their BMS judged as one: the keys file's [banks.NAME]) ------

  const VERDICT_CLASS = { ok: "sev-ok", warning: "sev-warning", alarm: "sev-alarm" };

  function bankCard(obj) {
    const node = el("article", "card bank " + (VERDICT_CLASS[obj.verdict] || "sev-unknown"));
    node.dataset.bank = String(obj.name);
    const head = el("div", "head");
    head.appendChild(el("h3", "name", obj.name));
    head.appendChild(el("span", "verdict", obj.verdict));
    node.appendChild(head);
    const heard = obj.members_heard + " of " + obj.members + " members heard" +
      (obj.members_stale ? " \u00b7 " + obj.members_stale + " stale" : "");
    node.appendChild(el("p", "sub", "Bank \u00b7 " + String(obj.layout || "").replace(/_/g, " ") + " \u00b7 " + heard));
    if (obj.verdict !== "ok" && obj.reason) node.appendChild(el("p", "note reason", obj.reason));

    const figs = el("div", "figures");
    figs.appendChild(figure("Voltage", num(obj.voltage_v, 2), "V"));
    if (obj.soc_pct !== null || obj.soc_from) figs.appendChild(figure("State of charge", num(obj.soc_pct, 0), "%"));
    if (obj.current_a !== null || obj.soc_from) figs.appendChild(figure("Current", num(obj.current_a, 1), "A"));
    if (obj.ttg_min !== null && obj.ttg_min !== undefined) figs.appendChild(figure("Time to go", timeToGo(obj.ttg_min), ""));
    const tLow = num(obj.temperature_min_c, 0), tHigh = num(obj.temperature_max_c, 0);
    figs.appendChild(figure("Temperature", tLow === null ? null : (tLow === tHigh ? tLow : tLow + "\u2013" + tHigh), "\u00b0C"));
    node.appendChild(figs);

    const dl = el("dl", "facts");
    const cellLine = function (label, v, at) {
      dl.appendChild(el("dt", null, label));
      const known = typeof v === "number";
      dl.appendChild(el("dd", known ? "" : "unknown", known ? v.toFixed(2) + " V \u2014 " + (at || "") : "unknown"));
    };
    cellLine("Lowest cell", obj.cell_voltage_min_v, obj.cell_voltage_min_at);
    cellLine("Highest cell", obj.cell_voltage_max_v, obj.cell_voltage_max_at);
    if (typeof obj.cell_spread_mv === "number") {
      dl.appendChild(el("dt", null, "Cell spread"));
      dl.appendChild(el("dd", null, obj.cell_spread_mv + " mV"));
    }
    const blocked = function (label, value, who) {
      yesNo(dl, label, value);
      if (value === false && Array.isArray(who) && who.length) {
        dl.lastChild.textContent = "not allowed (" + who.join(", ") + ")";
      }
    };
    blocked("Charging", obj.allowed_to_charge, obj.blocking_charge);
    blocked("Discharging", obj.allowed_to_discharge, obj.blocking_discharge);
    node.appendChild(dl);

    const codes = Array.isArray(obj.codes) ? obj.codes : [];
    if (codes.length) {
      const list = el("ul", "codes");
      codes.forEach(function (code) {
        const item = el("li", "code " + String(code.severity || ""));
        item.dataset.code = String(code.id);
        const title = el("div", "t");
        title.appendChild(el("span", "id", code.id));
        title.appendChild(document.createTextNode(String(code.title || "") + " \u2014 " + String(code.member || "")));
        item.appendChild(title);
        if (code.remedy) item.appendChild(el("p", "remedy", code.remedy));
        list.appendChild(item);
      });
      node.appendChild(list);
    } else if (obj.codes_complete === false) {
      node.appendChild(el("p", "codes-unknown", "Alarms and warnings: unknown for some member \u2014 not an all-clear."));
    } else {
      node.appendChild(el("p", "clear", "No active alarm or warning in the bank."));
    }
    if (Array.isArray(obj.imbalance) && obj.imbalance.length) {
      const item = el("div", "code warning");
      item.appendChild(el("div", "t", "Imbalance between batteries"));
      obj.imbalance.forEach(function (line) { item.appendChild(el("p", null, line)); });
      if (obj.imbalance_remedy) item.appendChild(el("p", "remedy", obj.imbalance_remedy));
      node.appendChild(item);
    }
    if (Array.isArray(obj.member_states) && obj.member_states.length) {
      const members = el("dl", "facts members");
      obj.member_states.forEach(function (m) {
        members.appendChild(el("dt", null, m.name));
        const v = num(m.voltage_v, 2);
        const text = m.status === "ok" ? (v === null ? "ok" : v + " V") : String(m.detail || m.status);
        members.appendChild(el("dd", m.status === "ok" ? "" : "unknown", text));
      });
      node.appendChild(members);
    }
    return node;
  }

  function banks(list) {
    // Banks come first; the devices follow.
    const section = document.getElementById("banks");
    const holder = document.getElementById("bank-list");
    while (holder.firstChild) holder.removeChild(holder.firstChild);
    state.banks = Array.isArray(list) ? list : [];
    state.banks.forEach(function (obj) { holder.appendChild(bankCard(obj)); });
    section.hidden = state.banks.length === 0;
  }

  function chrome() {
    const n = state.devices.size;
    document.getElementById("empty").hidden = n > 0;
    document.getElementById("devices-title").hidden = n === 0 || state.banks.length === 0;
  }

  // --- the stream ---------------------------------------------------------------------------

  function setConnected(up) {
    const conn = document.getElementById("conn");
    conn.textContent = up ? "live" : "offline";
    conn.className = "conn " + (up ? "live" : "down");
    document.getElementById("lost").hidden = up || !everConnected;
    document.body.classList.toggle("offline", !up);
  }

  function parse(event) {
    lastMessage = Date.now();
    try { return JSON.parse(event.data); } catch (e) { return undefined; }
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("events");
    source.onopen = function () { lastMessage = Date.now(); everConnected = true; setConnected(true); };
    source.onerror = function () {
      setConnected(false);
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
    };
    source.addEventListener("snapshot", function (event) {
      const data = parse(event);
      if (!data || !Array.isArray(data.devices)) return;
      const now = performance.now();
      if (typeof data.stale_after_s === "number") state.staleAfter = data.stale_after_s;
      const seen = new Set();
      data.devices.forEach(function (obj) { seen.add(obj.address); put(obj, now); });
      Array.from(state.devices.keys()).forEach(function (a) { if (!seen.has(a)) remove(a); });
      banks(data.banks);
      everConnected = true;
      setConnected(true);
      chrome();
    });
    source.addEventListener("device", function (event) {
      const obj = parse(event);
      if (obj && obj.address) { put(obj, performance.now()); chrome(); }
    });
    source.addEventListener("gone", function (event) {
      const address = parse(event);
      if (typeof address === "string") { remove(address); chrome(); }
    });
    source.addEventListener("banks", function (event) {
      const list = parse(event);
      if (Array.isArray(list)) { banks(list); chrome(); }
    });
    source.addEventListener("ping", function () { lastMessage = Date.now(); });
  }

  function everySecond() {
    const now = performance.now();
    state.devices.forEach(function (entry) { refreshAge(entry, now); });
    if (source && lastMessage && Date.now() - lastMessage > WATCHDOG_MS) {
      // A phone that slept or a Wi-Fi that dropped can leave a dead stream open: start over.
      lastMessage = 0;
      setConnected(false);
      connect();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    setTheme(storedTheme(), false);
    document.getElementById("mode").addEventListener("click", function () {
      setTheme(document.documentElement.dataset.theme === "night" ? "day" : "night", true);
    });
    connect();
    setInterval(everySecond, 1000);
  });
})();
