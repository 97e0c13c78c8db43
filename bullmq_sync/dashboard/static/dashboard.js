// bullmq-sync dashboard: live counts over Server-Sent Events, select-all, bulk progress.
// Hand-written, no build step. Every value from the server is set with textContent.
(function () {
  "use strict";

  function each(selector, fn) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), fn);
  }

  function logEvents(events) {
    var list = document.getElementById("event-log");
    if (!list || !events || !events.length) return;
    each("#event-log li.muted", function (li) { li.remove(); });
    events.forEach(function (ev) {
      var li = document.createElement("li");
      li.textContent = new Date().toLocaleTimeString() + "  " + ev.event + (ev.jobId ? "  job " + ev.jobId : "");
      list.insertBefore(li, list.firstChild);
    });
    while (list.children.length > 50) list.removeChild(list.lastChild);
  }

  function apply(update) {
    each("[data-count]", function (el) {
      if (el.dataset.queue !== update.queue) return;
      var value = update.counts[el.dataset.state];
      if (typeof value !== "number") return;
      el.textContent = String(value);
      el.classList.toggle("nonzero", value > 0);
    });
    each("[data-paused]", function (el) {
      if (el.dataset.queue === update.queue) el.hidden = !update.paused;
    });
    if (update.job) {
      var badge = document.getElementById("job-state");
      if (badge) {
        badge.textContent = String(update.job.state);
        badge.className = "badge state-" + String(update.job.state).replace(/[^a-z-]/g, "");
      }
    }
    logEvents(update.events);
  }

  function connect() {
    var url = document.body.dataset.eventsUrl;
    if (!url || !window.EventSource) return;
    var source = new EventSource(url);
    var live = document.getElementById("live");
    source.onopen = function () { if (live) live.hidden = false; };
    source.onerror = function () { if (live) live.hidden = true; };
    source.onmessage = function (message) {
      var update;
      try { update = JSON.parse(message.data); } catch (e) { return; }
      if (update && update.queue && update.counts) apply(update);
    };
  }

  function selectAll() {
    each("[data-select-all]", function (box) {
      box.addEventListener("change", function () {
        each("input[name=ids]", function (item) { item.checked = box.checked; });
      });
    });
  }

  // Bulk actions: POST with Accept: application/x-ndjson and show each batch as it lands.
  function bulkForms() {
    each("form[data-bulk]", function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.fetch || !window.TextDecoder) return;  // plain POST + redirect instead
        event.preventDefault();
        var button = form.querySelector("button[type=submit]");
        var box = form.querySelector(".progress");
        var bar = box.querySelector("progress");
        var label = box.querySelector(".progress-text");
        button.disabled = true;
        box.hidden = false;
        label.textContent = "Starting…";
        var body = new URLSearchParams(new FormData(form));
        fetch(form.getAttribute("action"), {
          method: "POST",
          body: body,
          credentials: "same-origin",
          headers: { "Accept": "application/x-ndjson" }
        }).then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          var reader = response.body.getReader();
          var decoder = new TextDecoder();
          var buffer = "";
          function pump() {
            return reader.read().then(function (chunk) {
              if (chunk.done) return;
              buffer += decoder.decode(chunk.value, { stream: true });
              var lines = buffer.split("\n");
              buffer = lines.pop();
              lines.forEach(function (line) {
                if (!line) return;
                var item = JSON.parse(line);
                if (item.error) { label.textContent = "Failed: " + item.error; return; }
                var total = Math.max(item.total || 0, item.moved || 0, 1);
                bar.max = total;
                bar.value = item.moved || 0;
                label.textContent = (item.moved || 0) + " of " + (item.total || 0) + (item.done ? " — done" : "");
                if (item.done) {
                  var back = form.dataset.back;
                  var link = document.createElement("a");
                  link.href = back;
                  link.id = "bulk-done";
                  link.textContent = "Back to the queue";
                  box.appendChild(link);
                }
              });
              return pump();
            });
          }
          return pump();
        }).catch(function (error) {
          label.textContent = "Failed: " + error.message;
          button.disabled = false;
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    connect();
    selectAll();
    bulkForms();
  });
})();
