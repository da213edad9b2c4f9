// Hookrunner dashboard: progressive enhancement only (every page reads without it).
// Live output and statuses use the browser's EventSource on the session cookie.
"use strict";

(function () {
  function statusBadge(element, status) {
    element.className = "badge s-" + status;
    element.textContent = status.replace(/_/g, " ");
  }

  // Forms with data-confirm ask first.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // The output pane of an execution: stored lines are in the page; new ones stream in.
  function followOutput(pane) {
    var lastSeq = parseInt(pane.getAttribute("data-last-seq"), 10) || 0;
    var stateText = document.getElementById("output-state");
    var statusHolder = document.getElementById("execution-status");
    var stickToBottom = true;

    pane.addEventListener("scroll", function () {
      // Autoscroll stops when the reader scrolls up, and resumes at the bottom.
      stickToBottom = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 4;
    });
    pane.scrollTop = pane.scrollHeight;

    function append(data) {
      if (data.seq <= lastSeq) {
        return; // already shown (stored in the page, or sent before a reconnection)
      }
      lastSeq = data.seq;
      var line = document.createElement("span");
      line.className = "line " + (data.stream === "stderr" ? "stderr" : "stdout");
      line.setAttribute("data-seq", String(data.seq));
      line.textContent = data.line + "\n";
      pane.appendChild(line);
      pane.setAttribute("data-last-seq", String(lastSeq));
      if (stickToBottom) {
        pane.scrollTop = pane.scrollHeight;
      }
    }

    // ?after= is the position of the page's stored lines; the browser's reconnections
    // send Last-Event-ID (the last line received), which the server prefers.
    var source = new EventSource(pane.getAttribute("data-stream-url") + "?after=" + lastSeq);
    source.addEventListener("log", function (event) {
      append(JSON.parse(event.data));
    });
    source.addEventListener("status", function (event) {
      var data = JSON.parse(event.data);
      var badge = statusHolder && statusHolder.querySelector("[data-status]");
      if (badge) {
        statusBadge(badge, data.status);
      }
      var exit = document.getElementById("exit-code");
      if (exit && data.exit_code !== null && data.exit_code !== undefined) {
        exit.textContent = String(data.exit_code);
      }
    });
    source.addEventListener("end", function (event) {
      var data = JSON.parse(event.data);
      source.close();
      pane.setAttribute("data-final", "true");
      if (stateText) {
        stateText.textContent = "Finished: " + data.status.replace(/_/g, " ") + ".";
      }
      var badge = statusHolder && statusHolder.querySelector("[data-status]");
      if (badge) {
        statusBadge(badge, data.status);
      }
      var cancel = document.querySelector("#execution-actions form[action$='/cancel']");
      if (cancel) {
        cancel.remove();
      }
    });
    source.addEventListener("error", function () {
      if (stateText && pane.getAttribute("data-final") !== "true") {
        stateText.textContent = "Connection lost: reconnecting…";
      }
    });
    source.addEventListener("open", function () {
      if (stateText && pane.getAttribute("data-final") !== "true") {
        stateText.textContent = "Live: following new lines…";
      }
    });
  }

  // The executions list: statuses change in place from the status feed; executions
  // that match the filters but are not shown yet are announced (first page only).
  function followStatuses(table) {
    var source = new EventSource(table.getAttribute("data-status-feed"));
    var trigger = table.getAttribute("data-trigger");
    var status = table.getAttribute("data-status");
    var notice = document.getElementById("new-executions");
    source.addEventListener("status", function (event) {
      var data = JSON.parse(event.data);
      var row = table.querySelector('tr[data-execution-id="' + data.id + '"]');
      var badge = row && row.querySelector("[data-status]");
      if (badge) {
        statusBadge(badge, data.status);
      } else if (
        !row && notice && data.status === "queued" &&
        (!trigger || trigger === data.trigger) && (!status || status === data.status)
      ) {
        notice.hidden = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var pane = document.getElementById("output");
    if (pane && window.EventSource && pane.getAttribute("data-final") !== "true") {
      followOutput(pane);
    }
    var table = document.querySelector("table[data-status-feed]");
    if (table && window.EventSource) {
      followStatuses(table);
    }
  });
})();
