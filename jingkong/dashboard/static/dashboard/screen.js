/* 一屏掌控 — the one-screen command view.
   Reads: /api/v1/dashboard (summary, regions, epi, clock, alerts, layers/*), /api/v1/geo (the district's own polygons,
   no internet tiles); listens to one EventSource (/screen/stream). Every string comes translated
   from the page's JSON config; numbers through Intl.NumberFormat of the page language; times in Asia/Shanghai.
   A panel whose endpoint fails shows "no data" — the rest of the screen keeps working. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("jk-config").textContent);
  var T = JSON.parse(document.getElementById("jk-i18n").textContent);
  var LANG = cfg.language || undefined;
  var TZ = cfg.time_zone || "Asia/Shanghai";
  var screenEl = document.getElementById("jk-screen");

  // ---- formatting ------------------------------------------------------------------------------------------------
  var intFmt = new Intl.NumberFormat(LANG, { maximumFractionDigits: 0 });
  var decFmt = new Intl.NumberFormat(LANG, { maximumFractionDigits: 1 });
  var pctFmt = new Intl.NumberFormat(LANG, { style: "percent", maximumFractionDigits: 0 });
  var nowFmt = new Intl.DateTimeFormat(LANG, { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  var timeFmt = new Intl.DateTimeFormat(LANG, { timeZone: TZ, month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", hour12: false });
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function n0(v) { return isNum(v) ? intFmt.format(v) : "–"; }
  function n1(v) { return isNum(v) ? decFmt.format(v) : "–"; }
  function pct(v) { return isNum(v) ? pctFmt.format(v) : "–"; }
  function when(iso) { if (!iso) return "–"; var d = new Date(iso); return isNaN(d) ? "–" : timeFmt.format(d); }
  function tpl(s, params) {
    return String(s).replace(/%\((\w+)\)s/g, function (_m, k) { return params[k] != null ? params[k] : ""; });
  }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (attrs[k] != null) node.setAttribute(k, attrs[k]); });
    if (text != null) node.textContent = text;
    return node;
  }
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function label(group, code) {  // a code from a layer (status, category) → its translated name
    var names = (T.choices || {})[group] || {};
    return code == null || code === "" ? "" : (names[String(code)] || String(code));
  }
  function dl(rows) {  // popup body: [[label, value], ...] → <dl> HTML (values escaped)
    return "<dl>" + rows.filter(function (r) { return r[1] != null && r[1] !== ""; }).map(function (r) {
      return "<dt>" + esc(r[0]) + "</dt><dd>" + esc(r[1]) + "</dd>";
    }).join("") + "</dl>";
  }

  // ---- state and fetching ------------------------------------------------------------------------------------------
  var state = {
    region: cfg.start ? cfg.start.code : (cfg.root || ""),
    info: cfg.start,  // {code, name, level, path}
    seq: 0,           // bumps on every change of region: late answers for an old region are dropped
    metric: "rate",
    basis: "report",
    epi: null,
    rows: {},
    alertIds: {},
    layerData: {},
  };

  function query(params) {
    var q = Object.keys(params || {}).filter(function (k) { return params[k] !== "" && params[k] != null; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
    return q ? "?" + q : "";
  }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error(r.status + " " + url);
      return r.json();
    });
  }
  /* A dashboard read for the current region; resolves to null (→ "no data") when the endpoint fails or the region
     changed meanwhile (then the caller ignores it: ``stale`` tells). */
  function dash(path, extra) {
    var seq = state.seq;
    var params = Object.assign({ region: state.region }, extra || {});
    return getJSON(cfg.api + path + query(params)).then(function (data) {
      return { data: data, stale: seq !== state.seq };
    }, function () { return { data: null, stale: seq !== state.seq }; });
  }

  // ---- title bar: clock, as-of, live -------------------------------------------------------------------------------
  /* The platform's clock, not the browser's: a replayed outbreak runs in its own time (the server renders
     clock.now() into the config; the offset to the browser's clock at load keeps it ticking). */
  var serverNow = cfg.now ? Date.parse(cfg.now) : NaN;
  var clockOffset = isNaN(serverNow) ? 0 : serverNow - Date.now();
  function platformNow() { return new Date(Date.now() + clockOffset); }
  var nowEl = document.getElementById("jk-now");
  function tick() {
    var d = platformNow();
    nowEl.textContent = nowFmt.format(d);
    nowEl.setAttribute("datetime", d.toISOString());
  }
  tick();
  setInterval(tick, 1000);

  var liveEl = document.getElementById("jk-live");
  function setLive(open) {
    liveEl.setAttribute("data-state", open ? "open" : "closed");
    liveEl.textContent = open ? T.live : T.offline;
  }

  var statusEl = document.getElementById("jk-map-status");
  function setStatus(text, isError) {
    statusEl.textContent = text || "";
    statusEl.className = "jk-map-status" + (isError ? " error" : "");
  }

  // ---- map ---------------------------------------------------------------------------------------------------------
  var renderer = L.canvas({ padding: 0.3 });
  var map = L.map("jk-map", { preferCanvas: true, renderer: renderer, zoomSnap: 0.25, minZoom: 8, maxZoom: 19,
    attributionControl: false });
  map.setView([29.9, 121.85], 11);
  if (window.ResizeObserver) new ResizeObserver(function () { map.invalidateSize(); }).observe(map.getContainer());

  var clusterOptions = {
    chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 45, removeOutsideVisibleBounds: true,
    iconCreateFunction: function (cluster) {  // size growth capped (no "blob"): 20 + 5·min(ceil((n−1)/10), 4) px
      var n = cluster.getChildCount();
      var size = 20 + 5 * Math.min(Math.ceil((n - 1) / 10), 4);
      return L.divIcon({ html: "<div><span>" + intFmt.format(n) + "</span></div>", className: "marker-cluster",
        iconSize: L.point(size + 10, size + 10) });
    }
  };
  // One group per data source; a map layer (the switch) shows several sources.
  var groups = {
    children: L.featureGroup(),
    labels: L.layerGroup(),
    outline: L.layerGroup(),
    zones: L.featureGroup(),
    cases: L.markerClusterGroup ? L.markerClusterGroup(clusterOptions) : L.layerGroup(),
    sites: L.featureGroup(),
    routes: L.featureGroup(),
    facilities: L.featureGroup(),
    checkpoints: L.featureGroup(),
    problems: L.featureGroup(),
    services: L.featureGroup(),
  };
  var LAYER_SOURCES = {
    situation: ["zones", "cases"],
    testing: ["sites"],
    routes: ["routes", "facilities", "checkpoints"],
    services: ["problems", "services"],
  };
  // children polygons, their labels and the focus outline are the base map: always shown (they carry the drill-down)
  groups.children.addTo(map);
  groups.labels.addTo(map);
  groups.outline.addTo(map);

  var RATE_BREAKS = [10, 50, 100, 200];  // per 100k over 7 days (UK rate scale, the two darkest steps dropped)
  var CASE_BREAKS = [3, 10, 30, 100];
  var RAMP = ["#12407F", "#2067AB", "#399384", "#74bb68", "#e0e543"];  // dark → bright: brighter is worse
  var GRID_STROKE = "#3A6F8F";
  var NO_DATA_FILL = "#33404d";
  var ZONE_STYLE = {
    lockdown: { color: "#E8412C", weight: 2.5, fillOpacity: 0.45, dashArray: null },
    control: { color: "#F39C12", weight: 2, fillOpacity: 0.35, dashArray: "8 5" },
    prevention: { color: "#F5E663", weight: 1.5, fillOpacity: 0.18, dashArray: "2 5" },
  };

  function situationOn() { return isLayerOn("situation"); }
  function metricValue(row) {
    if (!row) return null;
    return state.metric === "rate" ? row.incidence_7d_per_100k : row.cases_7d;
  }
  function fillFor(value) {
    if (value == null) return NO_DATA_FILL;
    if (value <= 0) return null;
    var breaks = state.metric === "rate" ? RATE_BREAKS : CASE_BREAKS;
    for (var i = 0; i < breaks.length; i++) if (value < breaks[i]) return RAMP[i];
    return RAMP[RAMP.length - 1];
  }
  function childStyle(feature) {
    var p = feature.properties;
    var base = { color: GRID_STROKE, weight: p.level === "grid" ? 1 : 1.6, fillOpacity: 0.06, fillColor: "#4fc3f7",
      renderer: renderer };
    if (!situationOn()) return base;
    var row = state.rows[p.code];
    var fill = fillFor(state.rowsLoaded ? metricValue(row || {}) : null);
    if (fill) { base.fillColor = fill; base.fillOpacity = 0.7; }
    return base;
  }
  function restyleChildren() {
    groups.children.eachLayer(function (layer) {
      if (layer.feature) layer.setStyle(childStyle(layer.feature));
      else if (layer.eachLayer) layer.eachLayer(function (l) { if (l.feature) l.setStyle(childStyle(l.feature)); });
    });
    legend.update();
  }

  function childTooltip(p) {
    var row = state.rows[p.code];
    var parts = [p.name];
    if (row) {
      parts.push(T.metric_rate + " " + n1(row.incidence_7d_per_100k));
      parts.push(T.tiles.cases_today + " " + n0(row.cases_today));
    }
    return parts.map(esc).join("<br>");
  }

  function drawChildren(collection, focusCode) {
    groups.children.clearLayers();
    groups.labels.clearLayers();
    var features = (collection && collection.features) || [];
    var labels = features.length <= 60;
    L.geoJSON(collection, {
      renderer: renderer,
      style: childStyle,
      onEachFeature: function (f, layer) {
        var p = f.properties;
        layer.bindTooltip(function () { return childTooltip(p); }, { sticky: true });
        if (labels && p.center) {
          L.tooltip({ permanent: true, direction: "center", className: "jk-label", interactive: false })
            .setLatLng([p.center[1], p.center[0]]).setContent(esc(p.name)).addTo(groups.labels);
        }
        layer.on("click", function () { if (p.code !== focusCode) select(p.code, true); });
        layer.on("mouseover", function () { layer.setStyle({ weight: 3, color: "#ffffff" }); });
        layer.on("mouseout", function () { layer.setStyle(childStyle(f)); });
      }
    }).addTo(groups.children);
  }

  /* Canvas draws in insertion order and hit-tests the topmost interactive layer: keep the overlays above the region
     polygons (which are redrawn on every drill-down) so zones stay visible and points stay clickable. */
  var OVERLAYS = ["zones", "routes", "sites", "facilities", "checkpoints", "problems", "services"];
  function raiseOverlays() {
    function raise(layer) {
      if (layer instanceof L.Path) layer.bringToFront();
      else if (layer.eachLayer) layer.eachLayer(raise);
    }
    groups.outline.eachLayer(raise);
    OVERLAYS.forEach(function (name) { if (map.hasLayer(groups[name])) groups[name].eachLayer(raise); });
  }

  function loadGeometry() {
    var seq = state.seq;
    var code = state.region;
    if (!code) {
      return getJSON(cfg.geo_api + "/regions/roots").then(function (fc) {
        if (seq !== state.seq) return;
        drawChildren(fc, null);
        var b = groups.children.getBounds();
        if (b.isValid()) map.fitBounds(b);
      }).catch(function () { setStatus(T.load_error, true); });
    }
    // the region and its children are fetched at once (not one after the other): a grid answers no children
    var childrenReq = getJSON(cfg.geo_api + "/regions/" + encodeURIComponent(code) + "/children")
      .catch(function () { return null; });
    return getJSON(cfg.geo_api + "/regions/" + encodeURIComponent(code)).then(function (detail) {
      if (seq !== state.seq) return;
      if (!state.info || state.info.code !== code || !state.info.path) {
        var path = detail.ancestors.filter(function (a) { return a.in_scope; })
          .map(function (a) { return { code: a.code, name: a.name, level: a.level }; });
        path.push({ code: code, name: detail.properties.name, level: detail.properties.level });
        state.info = { code: code, name: detail.properties.name, level: detail.properties.level, path: path };
        renderBreadcrumb();
      }
      groups.outline.clearLayers();
      if (detail.geometry) {
        L.geoJSON(detail, { renderer: renderer, interactive: false,
          style: { color: "#9fd3ff", weight: 3, fill: false } }).addTo(groups.outline);
      }
      var bb = detail.properties.bbox;
      if (bb) map.fitBounds([[bb[1], bb[0]], [bb[3], bb[2]]], { padding: [16, 16] });
      return childrenReq.then(function (fc) {
        if (!detail.children.length || !fc || !fc.features || !fc.features.length) {
          fc = { type: "FeatureCollection", features: [detail] };
        }
        if (seq !== state.seq) return;
        drawChildren(fc, code);
        raiseOverlays();
        setStatus(detail.children.length ? T.drill_hint : "");
      });
    }).catch(function () { if (seq === state.seq) setStatus(T.load_error, true); });
  }

  // ---- legend and layer switches -----------------------------------------------------------------------------------
  var legend = L.control({ position: "bottomright" });
  legend.onAdd = function () {
    this._div = L.DomUtil.create("div", "jk-legend");
    L.DomEvent.disableClickPropagation(this._div);
    return this._div;
  };
  legend.update = function () {
    var div = this._div;
    if (!div) return;
    div.innerHTML = "";
    if (situationOn()) {
      div.appendChild(el("strong", {}, state.metric === "rate" ? T.metric_rate : T.metric_cases));
      var list = el("ul");
      var breaks = state.metric === "rate" ? RATE_BREAKS : CASE_BREAKS;
      function item(colour, label, cls) {
        var li = el("li");
        var sw = el("span", { "class": "sw" + (cls ? " " + cls : "") });
        if (colour) sw.style.background = colour; else sw.style.background = "transparent";
        li.appendChild(sw);
        li.appendChild(document.createTextNode(label));
        list.appendChild(li);
      }
      item(null, "0 · " + T.legend_zero);
      for (var i = 0; i <= breaks.length; i++) {
        var lo = i === 0 ? 0 : breaks[i - 1];
        item(RAMP[i], i < breaks.length ? "> " + n0(lo) + " – " + n0(breaks[i]) : "≥ " + n0(lo));
      }
      item(NO_DATA_FILL, T.no_data);
      div.appendChild(list);
      var toggle = el("button", { type: "button", "data-metric": state.metric === "rate" ? "cases" : "rate" },
        state.metric === "rate" ? T.metric_cases : T.metric_rate);
      toggle.addEventListener("click", function () {
        state.metric = state.metric === "rate" ? "cases" : "rate";
        restyleChildren();
      });
      div.appendChild(toggle);
      if (cfg.sources.zones) {
        div.appendChild(el("strong", {}, T.legend_zones));
        var zl = el("ul");
        ["lockdown", "control", "prevention"].forEach(function (type) {
          var li = el("li");
          var sw = el("span", { "class": "sw" });
          var st = ZONE_STYLE[type];
          sw.style.borderColor = st.color;
          sw.style.borderStyle = type === "lockdown" ? "solid" : (type === "control" ? "dashed" : "dotted");
          sw.style.borderWidth = "2px";
          sw.style.background = st.color + (type === "lockdown" ? "73" : type === "control" ? "59" : "2e");
          li.appendChild(sw);
          li.appendChild(document.createTextNode(T.zone_types[type]));
          zl.appendChild(li);
        });
        div.appendChild(zl);
      }
    }
  };
  legend.addTo(map);

  var inputs = {};
  Array.prototype.forEach.call(document.querySelectorAll("input[data-layer]"), function (input) {
    inputs[input.getAttribute("data-layer")] = input;
    input.addEventListener("change", function () { applyLayer(input.getAttribute("data-layer")); });
  });
  function isLayerOn(name) { return !!(inputs[name] && inputs[name].checked); }

  function applyLayer(name) {
    var on = isLayerOn(name);
    (LAYER_SOURCES[name] || []).forEach(function (source) {
      if (!cfg.sources[source]) return;
      if (on) {
        groups[source].addTo(map);
        if (!state.layerData[source]) loadSource(source);
      } else {
        map.removeLayer(groups[source]);
      }
    });
    if (name === "situation") restyleChildren();
    return loadEnabled();
  }
  function loadEnabled() {  // promise settling when every enabled source of the current region is drawn
    var pending = [];
    Object.keys(LAYER_SOURCES).forEach(function (name) {
      if (!isLayerOn(name)) return;
      LAYER_SOURCES[name].forEach(function (source) {
        if (cfg.sources[source]) pending.push(state.layerData[source] || loadSource(source));
      });
    });
    return Promise.all(pending);
  }
  function resetSources() {
    Object.keys(state.layerData).forEach(function (source) { groups[source].clearLayers(); });
    state.layerData = {};
  }

  // ---- layer sources -----------------------------------------------------------------------------------------------
  function circle(latlng, opts) { return L.circleMarker(latlng, Object.assign({ renderer: renderer }, opts)); }
  function countdown(iso) {
    if (!iso) return "–";
    var ms = new Date(iso) - platformNow();
    if (!(ms > 0)) return when(iso);
    var h = Math.floor(ms / 3600000);
    return when(iso) + " (" + n0(Math.floor(h / 24)) + T.days.charAt(0) + " " + n0(h % 24) + T.hours + ")";
  }

  var STALE = new Error("stale");
  function fresh(url) {  // a layer read that is dropped when the region changed while it was under way
    var seq = state.seq;
    return getJSON(url).then(function (data) { if (seq !== state.seq) throw STALE; return data; });
  }

  var SOURCES = {
    zones: function () {
      return fresh(cfg.api + "/layers/zones").then(function (fc) {
        // The polygons let clicks through to the regions below (drill-down); each zone answers at its marker.
        L.geoJSON(fc, {
          renderer: renderer,
          interactive: false,
          style: function (f) {
            var st = ZONE_STYLE[f.properties.type] || ZONE_STYLE.prevention;
            var s = { color: st.color, fillColor: st.color, weight: st.weight, fillOpacity: st.fillOpacity,
              dashArray: st.dashArray, renderer: renderer, interactive: false };
            if (f.properties.status === "proposed") { s.fillOpacity = 0.08; s.dashArray = "1 6"; }
            return s;
          },
          onEachFeature: function (f, layer) {
            var p = f.properties;
            var st = ZONE_STYLE[p.type] || ZONE_STYLE.prevention;
            if (!layer.getBounds) return;
            var marker = circle(layer.getBounds().getCenter(), { radius: 5, weight: 2, color: "#0B1A2B",
              fillColor: st.color, fillOpacity: 1, jkAux: true });
            function body() {
              return "<strong>" + esc(p.name || p.ref) + "</strong> · " + esc(T.zone_types[p.type] || p.type) +
                (p.status === "proposed" ? " (" + esc(T.zone_proposed) + ")" : "") +
                dl([[T.zone_people, n0(p.people)], [T.zone_due, countdown(p.due_at)],
                    ["", p.ready ? T.zone_ready : ""]]);
            }
            marker.bindPopup(body);
            marker.bindTooltip(function () {
              return esc(T.zone_types[p.type] || p.type) + (p.due_at ? " · " + esc(countdown(p.due_at)) : "");
            });
            marker.addTo(groups.zones);
          }
        }).addTo(groups.zones);
        raiseOverlays();
      });
    },
    cases: function () {
      return fresh(cfg.api + "/layers/cases" + query({ region: state.region })).then(function (data) {
        var markers = (data.points || []).map(function (pt) {
          var icon = L.divIcon({ className: "jk-case-icon " + (pt[2] === "asymptomatic" ? "asymptomatic" : "confirmed"),
            iconSize: [10, 10] });
          return L.marker([pt[0], pt[1]], { icon: icon, keyboard: false }).bindPopup(
            "<strong>" + esc(pt[4]) + "</strong>" +
            dl([[T.epi_cases, T.case_kinds[pt[2]] || pt[2]], ["", T.found_kinds[pt[3]] || pt[3]]]));
        });
        if (groups.cases.addLayers) groups.cases.addLayers(markers);
        else markers.forEach(function (m) { m.addTo(groups.cases); });
      });
    },
    sites: function () {
      return fresh(cfg.api + "/layers/sites" + query({ region: state.region })).then(function (fc) {
        L.geoJSON(fc, {
          pointToLayer: function (f, latlng) {
            var p = f.properties;
            var prog = isNum(p.progress) ? p.progress : 0;
            return circle(latlng, { radius: 6 + Math.min(10, Math.sqrt(p.capacity_per_hour || 0)), weight: 2,
              color: "#e0f7ff", fillColor: prog >= 1 ? "#00acc1" : prog >= 0.5 ? "#4dd0e1" : "#b2ebf2",
              fillOpacity: 0.9 });
          },
          onEachFeature: function (f, layer) {
            var p = f.properties;
            layer.bindPopup("<strong>" + esc(p.name) + "</strong> · " + esc(p.campaign) + dl([
              [T.site.kind, label("site_kind", p.kind)],
              [T.site.sampled, n0(p.sampled)], [T.site.target, n0(p.target)], [T.site.progress, pct(p.progress)],
              [T.site.queue, n0(p.queue)], [T.site.capacity, n0(p.capacity_per_hour)],
              [T.site.status, label("site_status", p.status)]]));
            layer.bindTooltip(esc(p.name) + " · " + pct(p.progress));
          }
        }).addTo(groups.sites);
      });
    },
    routes: function () {
      return fresh(cfg.api + "/layers/routes" + query({ region: state.region })).then(function (fc) {
        L.geoJSON(fc, {
          renderer: renderer,
          style: function (f) {
            return { color: f.properties.status === "en_route" ? "#4fc3f7" : "#8fb3cc", weight: 3,
              dashArray: f.properties.status === "en_route" ? null : "6 6" };
          },
          pointToLayer: function (f, latlng) {
            return circle(latlng, { radius: 7, weight: 3, color: "#4fc3f7", fillColor: "#ffffff", fillOpacity: 1 });
          },
          onEachFeature: function (f, layer) {
            var p = f.properties;
            layer.bindPopup(dl([[T.run.ref, p.ref], [T.run.vehicle, p.vehicle],
              [T.run.status, label("run_status", p.status)], [T.run.people, n0(p.people)], [T.run.eta, when(p.eta)]]));
            layer.bindTooltip(esc(p.vehicle || p.ref || "") + " · " + esc(label("run_status", p.status)));
          }
        }).addTo(groups.routes);
      });
    },
    facilities: function () {
      return fresh(cfg.api + "/layers/facilities" + query({ region: state.region })).then(function (fc) {
        L.geoJSON(fc, {
          pointToLayer: function (f, latlng) {
            var occ = f.properties.occupancy;
            return circle(latlng, { radius: 9, weight: 2, color: "#ffffff",
              fillColor: !isNum(occ) ? NO_DATA_FILL : occ >= 0.9 ? "#E8412C" : occ >= 0.7 ? "#F39C12" : "#2EB872",
              fillOpacity: 0.95 });
          },
          onEachFeature: function (f, layer) {
            var p = f.properties;
            layer.bindPopup("<strong>" + esc(p.name) + "</strong>" + dl([
              [T.facility.kind, label("facility_kind", p.kind)], [T.facility.rooms, n0(p.rooms)],
              [T.facility.occupied, n0(p.occupied)], [T.facility.free, n0(p.free)],
              [T.facility.occupancy, pct(p.occupancy)]]));
            layer.bindTooltip(esc(p.name) + " · " + T.facility.free + " " + n0(p.free));
          }
        }).addTo(groups.facilities);
      });
    },
    checkpoints: function () {
      return fresh(cfg.api + "/layers/checkpoints" + query({ region: state.region })).then(function (fc) {
        L.geoJSON(fc, {
          pointToLayer: function (f, latlng) {
            return circle(latlng, { radius: 6, weight: 2, color: "#d1c4e9",
              fillColor: f.properties.denied_today ? "#F39C12" : "#7e57c2", fillOpacity: 0.95 });
          },
          onEachFeature: function (f, layer) {
            var p = f.properties;
            layer.bindPopup("<strong>" + esc(p.name) + "</strong>" + dl([
              [T.checkpoint.kind, label("checkpoint_kind", p.kind)],
              [T.checkpoint.crossings, n0(p.crossings_today)], [T.checkpoint.denied, n0(p.denied_today)],
              [T.checkpoint.referred, n0(p.referred_today)]]));
          }
        }).addTo(groups.checkpoints);
      });
    },
    problems: function () {
      return fresh(cfg.api + "/layers/problems" + query({ region: state.region })).then(function (fc) {
        L.geoJSON(fc, {
          pointToLayer: function (f, latlng) {
            var p = f.properties;
            return circle(latlng, { radius: 7, weight: p.overdue ? 4 : 2, color: p.overdue ? "#E8412C" : "#ffffff",
              fillColor: "#F39C12", fillOpacity: 0.95 });
          },
          onEachFeature: function (f, layer) {
            var p = f.properties;
            layer.bindPopup("<strong>" + esc(p.title) + "</strong>" + dl([[T.problem.type, label("problem_type", p.type)],
              [T.problem.urgency, label("urgency", p.urgency)], [T.problem.status, label("problem_status", p.status)],
              ["", p.overdue ? T.problem.overdue : ""]]));
          }
        }).addTo(groups.problems);
      });
    },
    services: function () {
      return fresh(cfg.api + "/layers/services" + query({ region: state.region })).then(function (fc) {
        L.geoJSON(fc, {
          pointToLayer: function (f, latlng) {
            var p = f.properties;
            return circle(latlng, { radius: 6, weight: p.overdue ? 4 : 2, color: p.overdue ? "#E8412C" : "#ffffff",
              fillColor: "#3D8BFD", fillOpacity: 0.95 });
          },
          onEachFeature: function (f, layer) {
            var p = f.properties;
            layer.bindPopup((p.ref ? "<strong>" + esc(p.ref) + "</strong>" : "") + dl([
              [T.service.category, label("service_category", p.category)], [T.service.priority, n0(p.priority)],
              [T.service.status, label("service_status", p.status)], ["", p.overdue ? T.problem.overdue : ""]]));
          }
        }).addTo(groups.services);
      });
    },
  };
  function loadSource(source) {
    var seq = state.seq;
    groups[source].clearLayers();
    var p = SOURCES[source]().catch(function (err) {
      if (err !== STALE && seq === state.seq) setStatus(T.load_error, true);
    }).then(function () { raiseOverlays(); updateCounts(); });
    state.layerData[source] = p;
    return p;
  }

  function leafCount(group) {
    if (group.getLayers && group instanceof L.MarkerClusterGroup) return group.getLayers().length;
    var n = 0;
    group.eachLayer(function (l) {  // features, not their helper markers
      if (l.options && l.options.jkAux) return;
      n += l.eachLayer && !(l instanceof L.Path) ? leafCount(l) : 1;
    });
    return n;
  }
  /* Features drawn per map layer and per data source (read by the browser tests: canvas paths are not DOM nodes). */
  function counts() {
    var out = { regions: leafCount(groups.children), layers: {}, sources: {} };
    Object.keys(LAYER_SOURCES).forEach(function (name) {
      out.layers[name] = 0;
      LAYER_SOURCES[name].forEach(function (source) {
        var c = map.hasLayer(groups[source]) ? leafCount(groups[source]) : 0;
        out.sources[source] = c;
        out.layers[name] += c;
      });
    });
    return out;
  }
  function updateCounts() {
    var c = counts();
    Object.keys(inputs).forEach(function (name) { inputs[name].setAttribute("data-features", c.layers[name] || 0); });
  }

  // ---- breadcrumb ----------------------------------------------------------------------------------------------
  var crumbEl = document.getElementById("jk-breadcrumb");
  var upEl = document.getElementById("jk-up");
  var crumbKey = null;
  function renderBreadcrumb() {
    var path = (state.info && state.info.path) || [];
    var key = JSON.stringify(path);
    if (key === crumbKey) return;  // unchanged: keep the nodes (a figures refresh must not rebuild them)
    crumbKey = key;
    crumbEl.innerHTML = "";
    path.forEach(function (r, i) {
      if (i) crumbEl.appendChild(el("span", { "class": "sep", "aria-hidden": "true" }, "›"));
      if (i === path.length - 1) {
        crumbEl.appendChild(el("strong", { "data-region": r.code }, r.name));
      } else {
        var a = el("a", { href: cfg.page + "?region=" + encodeURIComponent(r.code), "data-region": r.code }, r.name);
        a.addEventListener("click", function (ev) { ev.preventDefault(); select(r.code, true); });
        crumbEl.appendChild(a);
      }
    });
    upEl.hidden = path.length < 2;
  }
  upEl.addEventListener("click", function () {
    var path = (state.info && state.info.path) || [];
    if (path.length >= 2) select(path[path.length - 2].code, true);
  });

  // ---- tiles -------------------------------------------------------------------------------------------------------
  /* caption: what the numbers of a composite value are ("isolated / identified"), shown right under it */
  function tile(name, value, subLines, delta, alarm, caption) {
    var box = document.querySelector('.jk-tile[data-tile="' + name + '"]');
    if (!box) return;
    var valueEl = box.querySelector(".jk-value");
    valueEl.textContent = value == null ? "–" : value;
    var cap = box.querySelector(".jk-cap");
    if (caption && value != null) {
      if (!cap) { cap = el("div", { "class": "jk-cap" }); valueEl.parentNode.insertBefore(cap, valueEl.nextSibling); }
      cap.textContent = caption;
    } else if (cap) cap.remove();
    var subText = (subLines || []).filter(Boolean).join(" · ");
    box.querySelector(".jk-sub").textContent = subText;
    box.querySelector(".jk-sub").title = subText;  // the laptop layout clamps it to two lines
    var d = box.querySelector(".jk-delta");
    d.textContent = delta ? delta.text : "";
    d.className = "jk-delta" + (delta && delta.dir ? " " + delta.dir : "");
    box.classList.toggle("alarm", !!alarm);
    box.classList.toggle("empty", value == null);
  }
  function deltaOf(now, before) {
    if (!isNum(now) || !isNum(before)) return null;
    var diff = now - before;
    if (diff > 0) return { dir: "up", text: "↑ " + tpl(T.up_by, { n: n0(diff) }) };
    if (diff < 0) return { dir: "down", text: "↓ " + tpl(T.down_by, { n: n0(-diff) }) };
    return { dir: "", text: "= " + T.unchanged };
  }
  function renderTiles(s) {
    var names = Array.prototype.map.call(document.querySelectorAll(".jk-tile"), function (t) {
      return t.getAttribute("data-tile");
    });
    if (!s || !s.tiles) {
      names.forEach(function (name) { tile(name, null, [T.no_data]); });
      return;
    }
    var t = s.tiles;
    var asOf = T.as_of + " " + when(s.as_of);
    var g = function (o, k) { return o ? o[k] : null; };
    var ct = t.cases_today;
    tile("cases_today", ct ? n0(ct.total) : null, ct ? [
      T.confirmed + " " + n0(ct.confirmed), T.asymptomatic + " " + n0(ct.asymptomatic),
      T.in_quarantine + " " + n0(ct.in_quarantine), T.in_control + " " + n0(ct.in_control),
      T.in_community + " " + n0(ct.in_community)] : [T.no_data], ct ? deltaOf(ct.total, ct.previous_day_total) : null);
    tile("community_share", ct && isNum(ct.community_share) ? pct(ct.community_share) : (ct ? "–" : null),
      ct ? [T.in_community + " " + n0(ct.in_community) + " / " + n0(ct.total)] : [T.no_data], null,
      ct && ct.in_community > 0);
    tile("days_since_community_case", isNum(t.days_since_community_case) ? n0(t.days_since_community_case) : "–",
      [T.days]);
    tile("cases_total", isNum(t.cases_total) ? n0(t.cases_total) : null, [asOf]);
    var z = t.zones;
    if (z) {
      var count = ["lockdown", "control", "prevention"].reduce(function (a, k) { return a + (g(z[k], "count") || 0); }, 0);
      tile("zones", n0(count), ["lockdown", "control", "prevention"].map(function (k) {
        return T[k + "_short"] + " " + n0(g(z[k], "count")) + " (" + n0(g(z[k], "population")) + ")";
      }), null, g(z.lockdown, "count") > 0);
    } else tile("zones", null, [T.no_data]);
    var c = t.contacts;
    tile("contacts", c ? n0(c.isolated) + " / " + n0(c.identified) : null, c ? [
      T.located + " " + n0(c.located), T.transferred + " " + n0(c.transferred)] : [T.no_data],
      c && isNum(c.identified_today) ? { dir: c.identified_today > 0 ? "up" : "",
        text: tpl(T.identified_today, { n: "+" + n0(c.identified_today) }) } : null, false,
      T.isolated + " / " + T.identified);
    var r = t.round;
    tile("round", r ? pct(r.coverage) : null, r ? [r.name, tpl(T.sampled_of_target, { a: n0(r.sampled), b: n0(r.target) }),
      T.pending + " " + n0(r.pending)] : [T.no_data]);
    var rt = t.retest;
    tile("retest", rt ? n0(rt.pools_waiting) : null, rt ? [T.pools, n0(rt.persons_waiting) + " " + T.persons]
      : [T.no_data], null, rt && rt.pools_waiting > 0);
    var tr = t.transfer;
    tile("transfer", tr ? n0(tr.waiting) : null, tr ? [T.en_route + " " + n0(tr.en_route),
      isNum(tr.oldest_wait_minutes) ? tpl(T.oldest_wait, { n: n0(tr.oldest_wait_minutes) }) : ""] : [T.no_data]);
    var f = t.facilities;
    tile("facilities", f ? n0(f.free) : null, f ? [T.occupancy + " " + pct(f.occupancy),
      isNum(f.reserve_days) ? tpl(T.reserve_days, { n: n1(f.reserve_days) }) : ""] : [T.no_data], null,
      f && isNum(f.occupancy) && f.occupancy >= 0.9);
    var sv = t.services;
    tile("services", sv ? n0(sv.open) : null, sv ? [T.overdue + " " + n0(sv.overdue)] : [T.no_data], null,
      sv && sv.overdue > 0);
    var pb = t.problems;
    tile("problems", pb ? n0(pb.open) : null, pb ? [T.overdue + " " + n0(pb.overdue)] : [T.no_data], null,
      pb && pb.overdue > 0);
    var dr = t.directives;
    tile("directives", dr ? pct(dr.completion) : null, dr ? [n0(dr.done) + " " + tpl(T.of_tasks, { n: n0(dr.tasks) }),
      T.overdue + " " + n0(dr.overdue)] : [T.no_data]);
    var ck = t.checkpoints;
    tile("checkpoints", ck ? n0(ck.denied_today) : null, ck ? [T.crossings + " " + n0(ck.crossings_today),
      T.referred + " " + n0(ck.referred_today)] : [T.no_data]);
    Array.prototype.forEach.call(document.querySelectorAll(".jk-tile"), function (box) { box.title = asOf; });
  }

  function renderSummary(s) {
    renderTiles(s);
    document.getElementById("jk-asof").textContent = s ? when(s.as_of) : T.no_data;
    document.getElementById("jk-stale").hidden = !(s && s.stale);
    if (s && s.region && s.region.code === state.region && s.region.path) {
      state.info = s.region;
      renderBreadcrumb();
    }
  }

  // ---- five-stage clock ----------------------------------------------------------------------------------------
  /* One row per stage: the short name (full definition in its tooltip), median and P90 against the target on the
     row's own scale (so a 1 h stage next to a 24 h one stays readable), backlog and overdue; the slowest stage is
     named at the top, where a clipped panel cannot hide it. */
  function renderClock(c) {
    var box = document.getElementById("jk-clock");
    box.innerHTML = "";
    if (!c || !c.stages || !c.stages.length) { box.appendChild(el("p", { "class": "jk-nodata" }, T.no_data)); return; }
    var short = T.stage_short || {};
    var slowest = null;
    c.stages.forEach(function (s) { if (s.stage === c.slowest) slowest = s; });
    if (slowest) {
      var name = short[slowest.stage] || slowest.label || slowest.stage;
      box.appendChild(el("p", { "class": "jk-slowest", "data-stage": slowest.stage,
        title: (slowest.label || "") + " — " + T.clock_slowest_why }, tpl(T.clock_slowest, { stage: name })));
    }
    var key = el("p", { "class": "jk-clock-key" });
    [["p50", T.clock_median], ["p90", T.clock_p90], ["target", T.clock_target]].forEach(function (k) {
      var item = el("span", { "class": "k k-" + k[0] });
      item.appendChild(el("i", { "aria-hidden": "true" }));
      item.appendChild(document.createTextNode(k[1]));
      key.appendChild(item);
    });
    box.appendChild(key);
    c.stages.forEach(function (s) {
      var isSlowest = s.stage === c.slowest;
      var row = el("div", { "class": "jk-stage" + (isSlowest ? " slowest" : ""), "data-stage": s.stage,
        title: s.label || s.stage });
      var nameEl = el("span", { "class": "name" }, short[s.stage] || s.label || s.stage);
      if (isSlowest) nameEl.appendChild(el("span", { "class": "tag" }, T.clock_slowest_tag));
      row.appendChild(nameEl);
      var hasTimes = isNum(s.p50_h) || isNum(s.p90_h);
      var numsText = hasTimes
        ? T.clock_median + " " + n1(s.p50_h) + T.hours + " · " + T.clock_p90_short + " " + n1(s.p90_h) + T.hours +
          " · " + T.clock_target + " " + n1(s.target_h) + T.hours
        : T.clock_no_completed + " · " + T.clock_target + " " + n1(s.target_h) + T.hours;
      row.appendChild(el("span", { "class": "nums" }, numsText));
      var scale = Math.max(isNum(s.p90_h) ? s.p90_h : 0, isNum(s.p50_h) ? s.p50_h : 0,
        isNum(s.target_h) ? s.target_h : 0) * 1.15 || 1;
      var bars = el("div", { "class": "jk-bars", role: "img",
        "aria-label": T.clock_median + " " + n1(s.p50_h) + T.hours + ", " + T.clock_p90 + " " + n1(s.p90_h) + T.hours +
          ", " + T.clock_target + " " + n1(s.target_h) + T.hours });
      [["p50", s.p50_h], ["p90", s.p90_h]].forEach(function (b) {
        if (!isNum(b[1])) return;
        var bar = el("span", { "class": "jk-bar " + b[0] + (isNum(s.target_h) && b[1] > s.target_h ? " late" : "") });
        bar.style.width = Math.max(0.8, 100 * b[1] / scale).toFixed(1) + "%";
        bars.appendChild(bar);
      });
      if (isNum(s.target_h)) {
        var tg = el("span", { "class": "jk-target", title: T.clock_target + " " + n1(s.target_h) + T.hours });
        tg.style.left = (100 * s.target_h / scale).toFixed(1) + "%";
        bars.appendChild(tg);
      }
      row.appendChild(bars);
      var load = T.clock_backlog + " " + n0(s.backlog) + (s.overdue ? " · " + T.overdue + " " + n0(s.overdue) : "");
      row.appendChild(el("span", { "class": "load" + (s.overdue ? " late" : "") }, load));
      box.appendChild(row);
    });
  }

  // ---- epidemic curve ------------------------------------------------------------------------------------------
  var epiEl = document.getElementById("jk-epi");
  var EPI_LEAD_DAYS = 14;
  /* Index of the first date shown: 14 days before the first day with any case (on either basis, so switching the
     basis keeps the axis), never before the first date the API sent. */
  function epiMax(series, from) {  // the tallest stacked bar shown
    var m = 0;
    (series.local || []).forEach(function (v, i) {
      if (i >= from) m = Math.max(m, (v || 0) + ((series.imported || [])[i] || 0));
    });
    return m;
  }
  function epiStart(e) {
    var first = -1;
    ["onset", "report"].forEach(function (basis) {
      var b = e[basis] || {};
      ["local", "imported"].forEach(function (k) {
        (b[k] || []).some(function (v, i) {
          if (v > 0) { if (first < 0 || i < first) first = i; return true; }
          return false;
        });
      });
    });
    return first < 0 ? 0 : Math.max(0, first - EPI_LEAD_DAYS);
  }
  var epiTextEl = document.getElementById("jk-epi-text");
  function renderEpi() {
    var e = state.epi;
    if (!window.Plotly) {  // not loaded (yet): say so only when the data is missing too
      if (!e) { epiEl.innerHTML = ""; epiEl.appendChild(el("p", { "class": "jk-nodata" }, T.no_data)); }
      return;
    }
    if (!e || !e.dates || !e.dates.length) {
      Plotly.purge(epiEl);
      epiEl.innerHTML = "";
      epiEl.appendChild(el("p", { "class": "jk-nodata" }, T.no_data));
      epiTextEl.textContent = "";
      return;
    }
    if (epiEl.querySelector(".jk-nodata")) epiEl.innerHTML = "";
    var series = e[state.basis] || { local: [], imported: [] };
    var from = epiStart(e);  // `days` is the most shown: the axis starts two weeks before the first case
    var dates = e.dates.slice(from);
    var traces = [
      { type: "bar", name: T.epi_local, x: dates, y: (series.local || []).slice(from), marker: { color: "#4fc3f7" } },
      { type: "bar", name: T.epi_imported, x: dates, y: (series.imported || []).slice(from),
        marker: { color: "#F39C12" } },
    ];
    var rt = (e.rt || []).filter(function (r) { return isNum(r.mean_r) && r.t_end >= dates[0]; });
    if (rt.length) {
      var x = rt.map(function (r) { return r.t_end; });
      traces.push({ type: "scatter", mode: "lines", x: x, y: rt.map(function (r) { return r.q975; }), yaxis: "y2",
        line: { width: 0 }, hoverinfo: "skip", showlegend: false });
      traces.push({ type: "scatter", mode: "lines", x: x, y: rt.map(function (r) { return r.q025; }), yaxis: "y2",
        line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(255,79,216,0.22)", name: T.epi_rt_band,
        hoverinfo: "skip" });
      traces.push({ type: "scatter", mode: "lines", x: x, y: rt.map(function (r) { return r.mean_r; }), yaxis: "y2",
        line: { color: "#ff4fd8", width: 2 }, name: T.epi_rt });
    }
    var shapes = [], annotations = [];
    var inc = isNum(e.incomplete_days) ? e.incomplete_days : cfg.incomplete_days;
    if (inc > 0 && e.dates.length) {
      var first = e.dates[Math.max(0, e.dates.length - inc)];
      var last = e.dates[e.dates.length - 1];
      var half = 12 * 3600 * 1000;
      var x0 = new Date(new Date(first + "T00:00:00Z").getTime() - half).toISOString().slice(0, 13);
      var x1 = new Date(new Date(last + "T00:00:00Z").getTime() + half).toISOString().slice(0, 13);
      shapes.push({ type: "rect", xref: "x", yref: "paper", x0: x0, x1: x1, y0: 0, y1: 1, line: { width: 0 },
        fillcolor: "rgba(255,255,255,0.10)", layer: "below" });
      annotations.push({ xref: "x", yref: "paper", x: x1, y: 1, xanchor: "right", yanchor: "top", showarrow: false,
        text: T.epi_incomplete, font: { color: "#93a9bf", size: 11 } });
    }
    if (rt.length) {
      shapes.push({ type: "line", xref: "paper", yref: "y2", x0: 0, x1: 1, y0: 1, y1: 1,
        line: { color: "rgba(255,79,216,0.6)", width: 1, dash: "dot" } });
    }
    var layout = {
      barmode: "stack", bargap: 0.15, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: "#e6eef6", size: 11 }, margin: { l: 36, r: 36, t: 4, b: 28 }, showlegend: true,
      legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom", bgcolor: "rgba(0,0,0,0)" },
      xaxis: { type: "date", tickformat: "%m-%d", gridcolor: "#1c3550" },
      // counts are whole: no 0.5 ticks on a small outbreak's axis
      yaxis: { title: { text: T.epi_cases }, rangemode: "tozero", gridcolor: "#1c3550", separatethousands: true,
        tickformat: ",d", dtick: epiMax(series, from) <= 10 ? 1 : null },
      yaxis2: { title: { text: T.epi_rt }, overlaying: "y", side: "right", rangemode: "tozero", showgrid: false },
      shapes: shapes, annotations: annotations,
    };
    Plotly.react(epiEl, traces, layout, { displayModeBar: false, responsive: true });
    var txt = [];
    if (isNum(e.doubling_time_days)) txt.push(tpl(T.epi_doubling, { n: n1(e.doubling_time_days) }));
    if (isNum(e.halving_time_days)) txt.push(tpl(T.epi_halving, { n: n1(e.halving_time_days) }));
    if (rt.length) txt.push(T.epi_rt_note);
    else txt.push(tpl(T.epi_rt_absent, { n: n0(isNum(e.rt_min_cases) ? e.rt_min_cases : 11),
      w: n0(isNum(e.rt_window) ? e.rt_window : 7) }));
    epiTextEl.textContent = txt.join(" · ");
  }
  Array.prototype.forEach.call(document.querySelectorAll('input[name="jk-epi-basis"]'), function (input) {
    input.addEventListener("change", function () { if (input.checked) { state.basis = input.value; renderEpi(); } });
  });
  if (window.ResizeObserver) {
    new ResizeObserver(function () { if (window.Plotly && epiEl.data) Plotly.Plots.resize(epiEl); }).observe(epiEl);
  }

  // ---- alerts -----------------------------------------------------------------------------------------------------
  var alertsEl = document.getElementById("jk-alerts");
  var ROMAN = { 1: "I", 2: "II", 3: "III", 4: "IV" };
  var MAX_ALERTS = 100;
  function alertItem(a, fresh) {
    var sev = Math.min(4, Math.max(1, parseInt(a.severity, 10) || 4));
    var li = el("li", { "data-alert-id": a.id, "class": "sev-" + sev + (fresh ? " new" : ""), tabindex: "0",
      "data-kind": a.kind, "data-region": a.region_code || null });
    li.appendChild(el("span", { "class": "sev", "data-level": ROMAN[sev] }, T.severity[String(sev)]));
    li.appendChild(el("strong", {}, a.title || T.alert_kinds[a.kind] || ""));
    if (a.detail) li.appendChild(el("span", { "class": "detail" }, " " + a.detail));
    if (a.link && a.link.charAt(0) === "/" && a.link.charAt(1) !== "/") {
      // a new tab: the wall display keeps the screen (and its live stream) open
      var link = el("a", { href: a.link, target: "_blank", rel: "noopener" }, T.open_link);
      link.addEventListener("click", function (ev) { ev.stopPropagation(); });
      li.appendChild(link);
    }
    li.appendChild(el("span", { "class": "meta" }, [T.alert_kinds[a.kind], a.region_name, when(a.at)]
      .filter(Boolean).join(" · ")));
    /* A click on the alert drills the whole screen to its place; it never navigates away from the screen (the
       record opens from the explicit link, in a new tab). */
    function go() {
      var code = a.region_code;
      if (code && code !== state.region && (!cfg.root || code.indexOf(cfg.root) === 0)) select(code, true);
    }
    li.addEventListener("click", go);
    li.addEventListener("keydown", function (ev) { if (ev.key === "Enter") go(); });
    return li;
  }
  function renderAlerts(data) {
    alertsEl.innerHTML = "";
    state.alertIds = {};
    var items = (data && data.items) || [];
    if (!data) alertsEl.appendChild(el("li", { "class": "jk-nodata" }, T.no_data));
    else if (!items.length) alertsEl.appendChild(el("li", { "class": "jk-nodata jk-empty" }, T.alerts_none));
    items.slice(0, MAX_ALERTS).forEach(function (a) {
      state.alertIds[a.id] = true;
      alertsEl.appendChild(alertItem(a, false));
    });
    badge();
  }
  function prependAlert(a) {
    if (!a || a.id == null || state.alertIds[a.id]) return;
    state.alertIds[a.id] = true;
    Array.prototype.forEach.call(alertsEl.querySelectorAll(".jk-nodata"), function (n) { n.remove(); });
    alertsEl.insertBefore(alertItem(a, true), alertsEl.firstChild);
    while (alertsEl.children.length > MAX_ALERTS) alertsEl.removeChild(alertsEl.lastChild);
    badge();
  }
  function badge() {
    var n = alertsEl.querySelectorAll("li[data-alert-id]").length;
    document.getElementById("jk-alert-count").textContent = n ? n0(n) : "";
  }

  // ---- reads ------------------------------------------------------------------------------------------------------
  function loadFigures() {
    return Promise.all([
      dash("/summary").then(function (r) { if (!r.stale) renderSummary(r.data); }),
      dash("/regions").then(function (r) {
        if (r.stale) return;
        state.rows = {};
        state.rowsLoaded = !!r.data;
        ((r.data && r.data.rows) || []).forEach(function (row) { state.rows[row.code] = row; });
        restyleChildren();
      }),
      dash("/epi", { days: 60 }).then(function (r) { if (!r.stale) { state.epi = r.data; renderEpi(); } }),
      dash("/clock").then(function (r) { if (!r.stale) renderClock(r.data); }),
    ]);
  }
  function loadAlerts() {
    return dash("/alerts", { limit: 50 }).then(function (r) { if (!r.stale) renderAlerts(r.data); });
  }
  var refreshTimer = null;
  function scheduleRefresh() {  // `figures` events come in bursts: re-read once they settle (≈500 ms)
    if (refreshTimer) clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () { refreshTimer = null; loadFigures(); }, cfg.debounce_ms || 500);
  }

  // ---- live stream --------------------------------------------------------------------------------------------------
  /* The stream ends every max_seconds by design and the browser reconnects within `retry` (3 s): that is not an
     outage, so LIVE stays up for a grace period and only a connection still down after it shows "offline". On
     every (re)connection the `hello` versions are compared with the last ones seen: figures that moved while the
     connection was down are re-read (the stream only reports changes after it connected). */
  var source = null, reconnectTimer = null, offlineTimer = null, versions = null;
  var OFFLINE_GRACE_MS = 8000;
  function liveUp() {
    if (offlineTimer) { clearTimeout(offlineTimer); offlineTimer = null; }
    setLive(true);
  }
  function liveDown(now) {
    if (now) { if (offlineTimer) clearTimeout(offlineTimer); offlineTimer = null; setLive(false); return; }
    if (!offlineTimer && liveEl.getAttribute("data-state") === "open") {
      offlineTimer = setTimeout(function () { offlineTimer = null; setLive(false); }, OFFLINE_GRACE_MS);
    } else if (!offlineTimer) setLive(false);
  }
  function sameVersions(a, b) {
    if (!a || !b) return false;
    var ka = Object.keys(a), kb = Object.keys(b);
    return ka.length === kb.length && ka.every(function (k) { return a[k] === b[k]; });
  }
  function connect() {
    if (source) source.close();
    if (reconnectTimer) { clearTimeout(reconnectTimer); reconnectTimer = null; }
    liveDown(true);
    liveEl.textContent = T.connecting;
    if (!window.EventSource) return;
    var es = new EventSource(cfg.stream + query({ region: state.region }));
    source = es;
    es.onopen = function () { if (source === es) liveUp(); };
    es.onerror = function () {
      if (source !== es) return;
      // readyState 0: the browser reconnects by itself (the stream's normal end); 2: it gave up (HTTP error)
      if (es.readyState === 2) { liveDown(true); reconnectTimer = setTimeout(connect, 10000); } else liveDown(false);
    };
    es.addEventListener("hello", function (ev) {
      if (source !== es) return;
      liveUp();
      var v = null;
      try { v = JSON.parse(ev.data).versions || null; } catch (err) { v = null; }
      if (versions && v && !sameVersions(versions, v)) scheduleRefresh();
      if (v) versions = v;
    });
    es.addEventListener("alert", function (ev) {
      if (source !== es) return;
      try { prependAlert(JSON.parse(ev.data)); } catch (err) { /* a malformed event is dropped */ }
    });
    es.addEventListener("figures", function (ev) {
      if (source !== es) return;
      try { versions = JSON.parse(ev.data).versions || versions; } catch (err) { /* keep the last ones */ }
      scheduleRefresh();
    });
  }

  // ---- region changes ---------------------------------------------------------------------------------------------
  function select(code, push) {
    state.seq++;
    state.region = code || "";
    if (!state.info || state.info.code !== state.region) {
      // until the summary or the geo API names the new place: the known path cut at it, or the code alone
      var path = ((state.info && state.info.path) || []).slice();
      var at = path.map(function (r) { return r.code; }).indexOf(code);
      state.info = at >= 0 ? { code: code, name: path[at].name, level: path[at].level, path: path.slice(0, at + 1) }
        : { code: code, name: code, level: "", path: null };
    }
    renderBreadcrumb();
    if (push && history.pushState) {
      history.pushState({ region: state.region }, "", cfg.page + query({ region: state.region }));
    }
    state.rows = {};
    state.rowsLoaded = false;
    resetSources();
    setStatus(T.loading);
    connect();
    return Promise.all([loadGeometry(), loadFigures(), loadAlerts(), loadEnabled()]);
  }
  window.addEventListener("popstate", function () {
    var code = new URLSearchParams(location.search).get("region") || (cfg.start ? cfg.start.code : cfg.root);
    if (code !== state.region) select(code, false);
  });

  // ---- tabs (laptop layout) -----------------------------------------------------------------------------------------
  Array.prototype.forEach.call(document.querySelectorAll(".jk-tabs button"), function (b) {
    b.setAttribute("aria-selected", String(b.getAttribute("data-tab") === screenEl.getAttribute("data-tab")));
    b.addEventListener("click", function () {
      var tab = b.getAttribute("data-tab");
      screenEl.setAttribute("data-tab", tab);
      Array.prototype.forEach.call(document.querySelectorAll(".jk-tabs button"), function (o) {
        o.setAttribute("aria-selected", String(o === b));
      });
      if (tab === "epi" && window.Plotly && epiEl.data) Plotly.Plots.resize(epiEl);
    });
  });

  // ---- start --------------------------------------------------------------------------------------------------------
  window.JK_SCREEN = { map: map, state: state, counts: counts, select: select, groups: groups };
  Object.keys(LAYER_SOURCES).forEach(function (name) {  // the layers checked in the page: shown, loaded by select()
    if (isLayerOn(name)) LAYER_SOURCES[name].forEach(function (src) { if (cfg.sources[src]) groups[src].addTo(map); });
  });
  /* plotly.js arrives asynchronously (4.8 MB to parse): the curve is drawn when it is there; the first render is
     complete when both the data and the chart are. */
  var plotlyReady = new Promise(function (resolve) {
    if (window.Plotly) { resolve(); return; }
    var tag = document.getElementById("jk-plotly");
    if (!tag) { resolve(); return; }
    tag.addEventListener("load", function () { resolve(); });
    tag.addEventListener("error", function () { resolve(); });
  });
  var first = Promise.all([select(state.region, false), plotlyReady.then(function () { renderEpi(); })]);
  first.then(function () {
    updateCounts();
    screenEl.setAttribute("data-ready", "1");
  }, function () { screenEl.setAttribute("data-ready", "1"); });
})();
