/*
	The bench's HTTP and HTTPS update servers, on a thread of their own. A real update server is never in the
	board's process; in its thread, the server's file reads and socket writes would wait whenever the board's run
	loop works (it takes a socket read's worth of fragments without yielding), which a plain download, with
	almost nothing to do per chunk, barely makes it do. Both sides of the throughput table fetch from this thread.
*/

import { Worker } from "node:worker_threads";
import type { ServerTls } from "../host-sim/server/server-tls";

export interface ServerThread {
	url: string;
	secureUrl: string;
	close(): Promise<void>;
}

export async function startServerThread(dir: string, tls: ServerTls): Promise<ServerThread> {
	const worker = new Worker(new URL("./server-thread.mjs", import.meta.url), { workerData: { dir, tls } });
	const { url, secureUrl } = await new Promise<{ url: string; secureUrl: string }>((resolve, reject) => {
		worker.once("message", resolve);
		worker.once("error", reject);
	});
	return {
		url,
		secureUrl,
		close: async () => {
			worker.postMessage("close");
			await new Promise((resolve) => worker.once("exit", resolve));
		},
	};
}
