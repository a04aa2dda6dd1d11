// The thread of server-thread.ts: the TypeScript loader, then the bench's update servers.
import { register } from "node:module";
import { parentPort, workerData } from "node:worker_threads";
register("../host-sim/ts-loader.mjs", import.meta.url);
const { startUpdateServer } = await import("../host-sim/server/http-server.ts");
const { dir, tls } = workerData;
const plain = await startUpdateServer({ dir, port: 0 });
const secure = await startUpdateServer({ dir, port: 0, tls });
parentPort.postMessage({ url: plain.url, secureUrl: secure.url });
parentPort.once("message", async () => {
	await plain.close();
	await secure.close();
	parentPort.close();
});
