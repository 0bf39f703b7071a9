// CPU the frame decoder spends on one large frame that arrives in small pieces (a slow or hostile
// client): each piece should cost only its own bytes, not a copy of everything buffered before it.
// No nodes: the TCP gateway and FrameDecoder share the buffering (protocol/frame.ts PendingBytes).
import { encodeFrame, FrameDecoder } from "../src/protocol/frame";
import { parseArgs } from "./lib/args";
import { printHeader, printTable, type Row } from "./lib/report";
import { median } from "./lib/stats";

const args = parseArgs({ bodyBytes: 65_000, pieces: "1,16,1024", reps: 5 });

printHeader(`one frame of a ${args.bodyBytes}-byte body, pushed into a FrameDecoder in small pieces, ${args.reps} repetition(s)`, false);
const frame = encodeFrame(1003, JSON.stringify({ text: "x".repeat(args.bodyBytes - 11) }));
const rows: Row[] = [];
for (const piece of args.pieces.split(",").map(Number)) {
  const cpuMs: number[] = [];
  for (let rep = 0; rep < args.reps; rep++) {
    const decoder = new FrameDecoder(frame.length);
    let frames = 0;
    const before = process.cpuUsage();
    // a fresh copy per piece, as a socket read gives
    for (let at = 0; at < frame.length; at += piece) frames += decoder.push(frame.slice(at, at + piece)).length;
    const used = process.cpuUsage(before);
    if (frames !== 1) throw new Error(`decoded ${frames} frames, expected 1`);
    cpuMs.push((used.user + used.system) / 1000);
  }
  rows.push({ "piece bytes": piece, pushes: Math.ceil(frame.length / piece), "CPU ms, median": Number(median(cpuMs).toFixed(1)), "CPU ms, max": Number(Math.max(...cpuMs).toFixed(1)) });
}
printTable(rows);
