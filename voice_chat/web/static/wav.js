// Reference clips for the voice lab: record the microphone as raw PCM through the capture
// worklet (MediaRecorder gives compressed audio, not PCM) and write 16 kHz mono WAV files.

export const CLIP_RATE = 16000;

/** A WAV (RIFF, PCM16 LE, mono) Blob from Int16Array or Float32Array samples. */
export function encodeWav(samples, rate = CLIP_RATE) {
  let pcm = samples;
  if (!(samples instanceof Int16Array)) {
    pcm = new Int16Array(samples.length);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      pcm[i] = s < 0 ? s * 0x8000 : s * 0x7fff;
    }
  }
  const head = new DataView(new ArrayBuffer(44));
  const str = (at, s) => [...s].forEach((c, i) => head.setUint8(at + i, c.charCodeAt(0)));
  const bytes = pcm.length * 2;
  str(0, "RIFF");
  head.setUint32(4, 36 + bytes, true);
  str(8, "WAVE");
  str(12, "fmt ");
  head.setUint32(16, 16, true); // fmt chunk size
  head.setUint16(20, 1, true); // PCM
  head.setUint16(22, 1, true); // mono
  head.setUint32(24, rate, true);
  head.setUint32(28, rate * 2, true); // byte rate
  head.setUint16(32, 2, true); // block align
  head.setUint16(34, 16, true); // bits per sample
  str(36, "data");
  head.setUint32(40, bytes, true);
  return new Blob([head.buffer, pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + bytes)], { type: "audio/wav" });
}

/** True when the bytes are a RIFF/WAVE file. */
export async function isWav(blob) {
  if (blob.size < 12) return false;
  const b = new Uint8Array(await blob.slice(0, 12).arrayBuffer());
  const s = (i, n) => String.fromCharCode(...b.slice(i, i + n));
  return s(0, 4) === "RIFF" && s(8, 4) === "WAVE";
}

/**
 * Any audio the browser can decode (WAV, MP3, Ogg, FLAC…) as a 16 kHz mono WAV Blob.
 * Returns {blob, seconds}.
 */
export async function toWav16k(blob) {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  const ctx = new Ctx();
  let decoded;
  try {
    decoded = await ctx.decodeAudioData(await blob.arrayBuffer());
  } finally {
    ctx.close().catch(() => {});
  }
  const frames = Math.max(1, Math.ceil(decoded.duration * CLIP_RATE));
  const off = new OfflineAudioContext(1, frames, CLIP_RATE);
  const src = off.createBufferSource();
  src.buffer = decoded; // several channels are mixed down to the one output channel
  src.connect(off.destination);
  src.start();
  const out = await off.startRendering();
  return { blob: encodeWav(out.getChannelData(0), CLIP_RATE), seconds: decoded.duration };
}

/** The duration of a WAV or other audio Blob in seconds (0 when it can't be decoded). */
export async function durationOf(blob) {
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    const ctx = new Ctx();
    try {
      return (await ctx.decodeAudioData(await blob.arrayBuffer())).duration;
    } finally {
      ctx.close().catch(() => {});
    }
  } catch {
    return 0;
  }
}

/**
 * Records the microphone through the page's capture worklet (mic -> 16 kHz PCM16 frames),
 * without echo cancellation or noise suppression, which would colour a voice reference.
 */
export class ClipRecorder {
  constructor({ onLevel, maxSeconds = 60, onLimit } = {}) {
    this.onLevel = onLevel;
    this.onLimit = onLimit;
    this.maxFrames = Math.round((maxSeconds * 1000) / 20);
    this.frames = [];
    this.ctx = null;
    this.stream = null;
    this.node = null;
  }

  get seconds() {
    return (this.frames.length * 20) / 1000;
  }

  get recording() {
    return !!this.node;
  }

  /** Start recording. Throws the getUserMedia error (err.name) when the mic is unavailable. */
  async start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      const err = new Error("This browser can’t record audio here (it needs https:// or localhost).");
      err.name = "NotSupportedError";
      throw err;
    }
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
    });
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      this.ctx = new Ctx({ latencyHint: "interactive" });
      await this.ctx.audioWorklet.addModule("/static/worklets/capture.js");
      const source = this.ctx.createMediaStreamSource(this.stream);
      this.node = new AudioWorkletNode(this.ctx, "capture-processor", {
        numberOfInputs: 1,
        numberOfOutputs: 0,
        channelCount: 1,
        channelCountMode: "explicit",
        channelInterpretation: "speakers",
        processorOptions: { targetRate: CLIP_RATE, frameMs: 20 },
      });
      this.frames = [];
      this.node.port.onmessage = (e) => {
        const m = e.data;
        if (m.type === "frame") {
          this.frames.push(new Int16Array(m.pcm));
          if (this.frames.length >= this.maxFrames && this.onLimit) this.onLimit();
        } else if (m.type === "level" && this.onLevel) this.onLevel(m.rms, m.peak);
      };
      source.connect(this.node);
      if (this.ctx.state === "suspended") await this.ctx.resume();
    } catch (err) {
      this.release();
      throw err;
    }
  }

  /** Stop and return the recording as a 16 kHz mono WAV Blob (null if nothing was recorded). */
  stop() {
    const frames = this.frames;
    this.release();
    const total = frames.reduce((n, f) => n + f.length, 0);
    if (!total) return null;
    const pcm = new Int16Array(total);
    let at = 0;
    for (const f of frames) {
      pcm.set(f, at);
      at += f.length;
    }
    return encodeWav(pcm, CLIP_RATE);
  }

  release() {
    if (this.node) {
      this.node.port.onmessage = null;
      this.node.disconnect();
    }
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    if (this.ctx) this.ctx.close().catch(() => {});
    this.node = this.stream = this.ctx = null;
    if (this.onLevel) this.onLevel(0, 0);
  }
}
