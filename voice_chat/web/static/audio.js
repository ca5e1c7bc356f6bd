// Audio for the call: one AudioContext, a capture worklet (mic -> 16 kHz PCM16 frames)
// and a playback worklet (streamed PCM16 replies -> speakers).

const WORKLETS = "/static/worklets/";

/** A microphone problem a person can act on. `kind` picks the message shown. */
export class MicError extends Error {
  constructor(kind, cause) {
    super(kind);
    this.kind = kind; // denied | none | busy | insecure | unsupported | failed
    this.cause = cause;
  }
}

export class AudioEngine {
  /**
   * @param {object} handlers
   *   onFrame(ArrayBuffer)            a 16 kHz PCM16 mic frame
   *   onLevel(rms, peak)              mic level, ~20 times a second
   *   onPlayback(message)             messages from the playback worklet
   *   onMicLost()                     the mic track ended (unplugged, revoked)
   */
  constructor(handlers) {
    this.h = handlers;
    this.ctx = null;
    this.ready = null; // Promise resolved when the worklets are loaded
    this.playNode = null;
    this.capNode = null;
    this.stream = null;
    this.source = null;
    this.muted = false;
    this.flushSeq = 0;
    this.flushWaiters = new Map();
    this.lastFlush = null;
  }

  /** Create the AudioContext. Call synchronously inside a user gesture (autoplay rules). */
  create() {
    if (this.ctx) {
      this.resume();
      return this.ready;
    }
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx || !window.AudioWorkletNode) {
      this.ready = Promise.reject(new Error("This browser has no AudioWorklet support."));
      this.ready.catch(() => {});
      return this.ready;
    }
    this.ctx = new Ctx({ latencyHint: "interactive" });
    this.ready = (async () => {
      await this.ctx.audioWorklet.addModule(WORKLETS + "playback.js");
      await this.ctx.audioWorklet.addModule(WORKLETS + "capture.js");
      this.playNode = new AudioWorkletNode(this.ctx, "playback-processor", {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { prebufferMs: 80, rebufferMs: 40 },
      });
      this.playNode.port.onmessage = (e) => this.onPlaybackMessage(e.data);
      this.playNode.connect(this.ctx.destination);
    })();
    this.ready.catch(() => {});
    this.resume();
    return this.ready;
  }

  get sampleRate() {
    return this.ctx ? this.ctx.sampleRate : 0;
  }

  /** Delay between the worklet's output and the speakers, in ms (0 when unknown). */
  get outputLatencyMs() {
    if (!this.ctx) return 0;
    const s = (this.ctx.outputLatency || 0) || (this.ctx.baseLatency || 0);
    return Math.min(200, Math.max(0, s * 1000));
  }

  get suspended() {
    return !!this.ctx && this.ctx.state === "suspended";
  }

  resume() {
    if (this.ctx && this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
  }

  // ---- microphone -------------------------------------------------------

  /** Start the microphone: `deviceId` (from enumerateDevices) or the browser's default. */
  async startMic(deviceId = "") {
    if (this.stream) return;
    if (!window.isSecureContext) throw new MicError("insecure");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new MicError("unsupported");
    let stream;
    try {
      const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 };
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: deviceId ? { ...audio, deviceId: { exact: deviceId } } : audio });
      } catch (err) {
        // The chosen microphone is gone (unplugged): the default one will do.
        if (!deviceId || !err || (err.name !== "OverconstrainedError" && err.name !== "NotFoundError")) throw err;
        stream = await navigator.mediaDevices.getUserMedia({ audio });
      }
    } catch (err) {
      const name = err && err.name;
      if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError")
        throw new MicError("denied", err);
      if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError")
        throw new MicError("none", err);
      if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError")
        throw new MicError("busy", err);
      throw new MicError("failed", err);
    }
    await this.ready;
    this.stream = stream;
    const track = stream.getAudioTracks()[0];
    if (track) {
      track.enabled = !this.muted;
      track.addEventListener("ended", () => {
        if (this.stream === stream) {
          this.stopMic();
          this.h.onMicLost && this.h.onMicLost();
        }
      });
    }
    this.source = this.ctx.createMediaStreamSource(stream);
    this.capNode = new AudioWorkletNode(this.ctx, "capture-processor", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCount: 1,
      channelCountMode: "explicit",
      channelInterpretation: "speakers",
      processorOptions: { targetRate: 16000, frameMs: 20 },
    });
    this.capNode.port.onmessage = (e) => {
      const m = e.data;
      if (m.type === "frame") this.h.onFrame && this.h.onFrame(m.pcm);
      else if (m.type === "level") this.h.onLevel && this.h.onLevel(this.muted ? 0 : m.rms, m.peak);
    };
    this.source.connect(this.capNode);
  }

  stopMic() {
    if (this.source) this.source.disconnect();
    if (this.capNode) {
      this.capNode.port.onmessage = null;
      this.capNode.disconnect();
    }
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    this.source = this.capNode = this.stream = null;
    this.h.onLevel && this.h.onLevel(0, 0);
  }

  get micOn() {
    return !!this.stream;
  }

  setMuted(muted) {
    this.muted = muted;
    if (this.stream) for (const t of this.stream.getAudioTracks()) t.enabled = !muted;
  }

  /** Drop the capture worklet's partial frame (start of a push-to-talk turn). */
  resetCapture() {
    if (this.capNode) this.capNode.port.postMessage({ type: "reset" });
  }

  // ---- playback ---------------------------------------------------------

  get canPlay() {
    return !!this.playNode;
  }

  playStart(id, rate) {
    if (this.playNode) this.playNode.port.postMessage({ type: "start", id, rate });
  }

  /** Queue PCM16 LE bytes (the ArrayBuffer is transferred). */
  playChunk(id, buffer) {
    if (this.playNode) this.playNode.port.postMessage({ type: "chunk", id, pcm: buffer }, [buffer]);
  }

  playEnd(id) {
    if (this.playNode) this.playNode.port.postMessage({ type: "end", id });
  }

  /**
   * Stop playback at once and drop buffered audio (all replies, or only `ids`).
   * Resolves with [{id, playedMs}] for the replies that were dropped (null if the worklet
   * did not answer in time); `lastFlush.stopMs` is how long the audio thread took to go
   * silent, measured on the audio clock.
   */
  flush(ids) {
    if (!this.playNode) return Promise.resolve([]);
    const seq = ++this.flushSeq;
    const requestedAt = this.ctx.currentTime;
    const t0 = performance.now();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.flushWaiters.delete(seq);
        resolve(null); // caller falls back to the last progress it saw
      }, 250);
      this.flushWaiters.set(seq, (m) => {
        clearTimeout(timer);
        this.lastFlush = {
          stopMs: Math.max(0, (m.flushedAt - requestedAt) * 1000),
          ackMs: performance.now() - t0,
        };
        resolve(m.segments);
      });
      this.playNode.port.postMessage({ type: "flush", ids, seq });
    });
  }

  onPlaybackMessage(m) {
    if (m.type === "flushed") {
      const w = this.flushWaiters.get(m.seq);
      if (w) {
        this.flushWaiters.delete(m.seq);
        w(m);
      }
    }
    this.h.onPlayback && this.h.onPlayback(m);
  }

  close() {
    this.stopMic();
    if (this.playNode) this.flush();
  }
}
