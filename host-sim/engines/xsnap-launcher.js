// The process that starts the xs engine's xsnap workers (host-sim/engines/xsnap-workers.ts explains why they are
// not forked from the host process). Plain JavaScript: it starts without the TypeScript loader.
//
// Asked { id, file, args } over its IPC channel, it starts the worker with two socket pairs for its descriptors 3
// (commands in) and 4 (answers out) and hands their other ends back, one message each: { id, end: "to" | "from" }.
// A worker that cannot start is answered { id, error }. { kill: id } ends one; a closed channel ends them all.

import { spawn } from "node:child_process";

const workers = new Map();

process.on("message", (request) => {
	if (request.kill !== undefined) {
		workers.get(request.kill)?.kill("SIGKILL");
		return;
	}
	const { id, file, args } = request;
	const worker = spawn(file, args, { stdio: ["ignore", "inherit", "inherit", "pipe", "pipe"] });
	if (worker.pid === undefined) {
		worker.on("error", (error) => process.send({ id, error: error.message }));
		return;
	}
	workers.set(id, worker);
	worker.on("exit", () => workers.delete(id));
	const [toWorker, fromWorker] = [worker.stdio[3], worker.stdio[4]];
	// Node began reading them (in this turn, so nothing is read yet), and a socket being handed over drops what it
	// reads until it is closed: the host's first answer could be lost. pause() would not stop the reads.
	for (const socket of [toWorker, fromWorker]) socket._handle.readStop();
	process.send({ id, end: "to" }, toWorker);
	process.send({ id, end: "from" }, fromWorker);
});

process.on("disconnect", () => {
	for (const worker of workers.values()) worker.kill("SIGKILL");
	process.exit(0);
});
