// jitsudod's session recording player: fetches a recording's timing and output
// streams from this service and plays them into the page's <pre id="screen">, with
// the recorded pauses. Output is written as text (textContent), never as markup, and
// terminal escape sequences are interpreted only as far as a plain text screen can
// show them (carriage return, backspace, erase line, clear screen); the rest are
// dropped. No eval, no inline code: the page's Content-Security-Policy allows only
// this file and fetches from this origin.
"use strict";

(function () {
  var player = document.getElementById("player");
  var screen = document.getElementById("screen");
  if (!player || !screen) {
    return;
  }
  var progress = document.getElementById("progress");
  var chainNote = document.getElementById("chain");
  var speedBox = document.getElementById("speed");

  // Streams sudo numbers: 1 stdout, 2 stderr, 4 ttyout are output; 5 is a window size.
  var OUTPUT = { 1: "stdout", 2: "stderr", 4: "ttyout" };
  var MAX_LINES = 5000;
  var MAX_PAUSE_MS = 2000;

  var events = [];
  var streams = {};
  var offsets = {};
  var next = 0;
  var timer = null;
  var playing = false;
  var term = null;
  var decoder = null;

  function decodeBase64(text) {
    var bin = atob(text || "");
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out;
  }

  function parseTiming(text) {
    var out = [];
    var lines = text.split("\n");
    // A last line without its newline is one a killed writer left torn: not an event.
    if (lines.length && lines[lines.length - 1] !== "") {
      lines.pop();
    }
    for (var i = 0; i < lines.length; i++) {
      var w = lines[i].split(/\s+/);
      if (w.length < 3) {
        continue;
      }
      var delay = parseFloat(w[1]);
      out.push({
        type: parseInt(w[0], 10),
        delayMs: isFinite(delay) ? delay * 1000 : 0,
        bytes: parseInt(w[2], 10) || 0,
      });
    }
    return out;
  }

  // A plain text screen: lines of characters and a cursor.
  function Term() {
    this.lines = [""];
    this.row = 0;
    this.col = 0;
    this.esc = "";
  }

  Term.prototype.put = function (ch) {
    var line = this.lines[this.row];
    while (line.length < this.col) {
      line += " ";
    }
    this.lines[this.row] = line.slice(0, this.col) + ch + line.slice(this.col + 1);
    this.col += 1;
  };

  Term.prototype.newline = function () {
    this.row += 1;
    this.col = 0;
    if (this.row >= this.lines.length) {
      this.lines.push("");
    }
    if (this.lines.length > MAX_LINES) {
      this.lines.shift();
      this.row -= 1;
    }
  };

  Term.prototype.control = function (seq) {
    // seq: the whole sequence after ESC.
    if (seq[0] !== "[") {
      return;
    }
    var final = seq[seq.length - 1];
    var arg = seq.slice(1, -1).replace(/[?>]/g, "");
    var n = parseInt(arg, 10) || 0;
    if (final === "K") {
      var line = this.lines[this.row];
      if (n === 0) {
        this.lines[this.row] = line.slice(0, this.col);
      } else if (n === 2) {
        this.lines[this.row] = "";
      }
    } else if (final === "J" && (n === 2 || n === 3)) {
      this.lines = [""];
      this.row = 0;
      this.col = 0;
    } else if (final === "H" && arg === "") {
      this.row = 0;
      this.col = 0;
    } else if (final === "C") {
      this.col += Math.max(n, 1);
    } else if (final === "D") {
      this.col = Math.max(0, this.col - Math.max(n, 1));
    } else if (final === "G") {
      this.col = Math.max(0, n - 1);
    }
  };

  Term.prototype.write = function (text) {
    for (var i = 0; i < text.length; i++) {
      var ch = text[i];
      if (this.esc) {
        this.esc += ch;
        var body = this.esc.slice(1);
        if (body[0] === "[") {
          if (body.length > 1 && /[@-~]/.test(ch)) {
            this.control(body);
            this.esc = "";
          }
        } else if (body[0] === "]") {
          // OSC: up to BEL or ST.
          if (ch === "\u0007" || body.slice(-2) === "\u001b\\") {
            this.esc = "";
          }
        } else {
          this.esc = "";
        }
        if (this.esc.length > 256) {
          this.esc = "";
        }
        continue;
      }
      if (ch === "\u001b") {
        this.esc = ch;
      } else if (ch === "\n") {
        this.newline();
      } else if (ch === "\r") {
        this.col = 0;
      } else if (ch === "\b") {
        this.col = Math.max(0, this.col - 1);
      } else if (ch === "\t") {
        this.col = (Math.floor(this.col / 8) + 1) * 8;
      } else if (ch < " " || ch === "\u007f") {
        // Other control characters do not show.
      } else {
        this.put(ch);
      }
    }
  };

  Term.prototype.text = function () {
    return this.lines.join("\n");
  };

  function reset() {
    stop();
    next = 0;
    offsets = { stdout: 0, stderr: 0, ttyout: 0 };
    term = new Term();
    decoder = {};
    screen.textContent = "";
    show();
  }

  function show() {
    if (progress) {
      progress.textContent = next + "/" + events.length + " events" +
        (next >= events.length && events.length ? " (end)" : "");
    }
  }

  function speed() {
    var v = parseFloat(speedBox ? speedBox.value : "1");
    return isFinite(v) && v >= 0 ? v : 1;
  }

  function step() {
    var e = events[next];
    next += 1;
    var name = OUTPUT[e.type];
    if (name && e.bytes > 0) {
      var data = streams[name];
      var start = offsets[name];
      var bytes = data.subarray(start, start + e.bytes);
      offsets[name] = start + bytes.length;
      if (!decoder[name]) {
        decoder[name] = new TextDecoder("utf-8");
      }
      term.write(decoder[name].decode(bytes, { stream: true }));
    }
  }

  function tick() {
    timer = null;
    if (!playing) {
      return;
    }
    // Everything due now, then wait for the next event's pause.
    do {
      step();
    } while (next < events.length && (speed() === 0 || events[next].delayMs === 0));
    screen.textContent = term.text();
    show();
    if (next >= events.length) {
      playing = false;
      return;
    }
    schedule();
  }

  function schedule() {
    var s = speed();
    var ms = s === 0 ? 0 : Math.min(events[next].delayMs / s, MAX_PAUSE_MS);
    timer = window.setTimeout(tick, ms);
  }

  function play() {
    if (playing || !events.length) {
      return;
    }
    if (next >= events.length) {
      reset();
    }
    playing = true;
    schedule();
  }

  function stop() {
    playing = false;
    if (timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    }
  }

  document.getElementById("play").addEventListener("click", play);
  document.getElementById("pause").addEventListener("click", stop);
  document.getElementById("restart").addEventListener("click", function () {
    reset();
    play();
  });

  fetch(player.getAttribute("data-src"), { credentials: "same-origin" })
    .then(function (resp) {
      if (!resp.ok) {
        throw new Error("the service answered " + resp.status);
      }
      return resp.json();
    })
    .then(function (data) {
      events = parseTiming(data.timing || "");
      streams = {
        stdout: decodeBase64(data.stdout),
        stderr: decodeBase64(data.stderr),
        ttyout: decodeBase64(data.ttyout),
      };
      if (chainNote) {
        var note = data.chain;
        if (data.unsealed_bytes > 0) {
          note += "; the last " + data.unsealed_bytes +
            " byte(s) are not covered by the chain (a cut recording's tail)";
        }
        chainNote.textContent = note;
        chainNote.className = data.verified ? "muted" : "error";
      }
      player.setAttribute("data-ready", "true");
      reset();
      play();
    })
    .catch(function (err) {
      if (chainNote) {
        chainNote.textContent = "cannot load the recording: " + err.message;
        chainNote.className = "error";
      }
    });
})();
