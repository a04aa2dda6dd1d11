// A worker thread of board-threads.ts: the TypeScript loader, then the board runs it is sent.
import { register } from "node:module";
register("../ts-loader.mjs", import.meta.url);
const { serveBoardRuns } = await import("./board-threads.ts");
serveBoardRuns();
