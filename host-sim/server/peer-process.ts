// Runs a system server (nginx, mosquitto) as a real reference peer: one foreground process whose files all
// live in a temp prefix, stopped with the test or, failing that, with Node itself.
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";

const startupDeadlineMs = 10_000;
const stopGraceMs = 5_000;

export type PeerProcess = { close(): Promise<void> };

// Neither nginx nor mosquitto reads its stdin, so a small shell stands between: it keeps the pipe from Node
// and stops the server when that pipe closes, whether close() ended it or Node died (even by SIGKILL)
// without cleaning up; then it removes the temp prefix.
const watchdogScript = `
exec 3<&0
"$@" </dev/null &
server=$!
{ read -r ignored <&3; kill -TERM "$server" 2>/dev/null; } &
watcher=$!
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
rm -rf -- "$PEER_PREFIX"
exit "$status"
`;

export interface PeerOptions {
	/** Used in error messages: "<name> did not start: …". */
	name: string;
	binary: string;
	args: string[];
	/** The temp folder holding the peer's files; removed when it stops. */
	prefix: string;
	port: number;
	/** Further ports the peer listens on, which must accept too before it counts as started. */
	otherPorts?: number[];
	/** Where the peer writes its pid, for a SIGKILL when SIGTERM is ignored. */
	pidFile?: string;
}

export async function startPeer(options: PeerOptions): Promise<PeerProcess> {
	const { prefix, port } = options;
	const child = spawn("/bin/sh", ["-c", watchdogScript, `${options.name}-watchdog`, options.binary, ...options.args], {
		stdio: ["pipe", "ignore", "pipe"],
		env: { ...process.env, PEER_PREFIX: prefix },
	});
	let stderr = "";
	child.stderr!.setEncoding("utf8");
	child.stderr!.on("data", (text: string) => { stderr += text; });
	// The shell may be gone when the pipe is closed; that is no error here.
	child.stdin!.on("error", () => {});
	// A spawn failure comes as an "error" event; without a listener it would crash the process.
	let spawnError: Error | undefined;
	child.once("error", (error) => { spawnError = error; });
	const exited = new Promise<void>((done) => child.once("close", () => done()));
	// A test that forgets close() must not keep Node alive: when Node exits the pipe closes and the peer stops.
	child.unref();
	(child.stdin as unknown as Socket).unref();
	(child.stderr as unknown as Socket).unref();

	const stop = async () => {
		child.ref();
		(child.stderr as unknown as Socket).ref();
		let timer: NodeJS.Timeout | undefined;
		if (child.exitCode === null && child.signalCode === null) {
			child.stdin!.end();
			if (options.pidFile) timer = setTimeout(() => killByPidFile(options.pidFile!), stopGraceMs);
		}
		await exited; // also once the peer died by itself, so all of its stderr has been read
		clearTimeout(timer);
		rmSync(prefix, { recursive: true, force: true });
	};
	let stopping: Promise<void> | undefined;
	const close = () => (stopping ??= stop());

	try {
		await waitUntilListening([port, ...options.otherPorts ?? []], () => spawnError?.message ?? (child.exitCode !== null || child.signalCode !== null ? "exited" : undefined));
	} catch (error) {
		await close();
		const detail = stderr.trim() || (error as Error).message;
		throw new Error(`${options.name} did not start: ${detail}`);
	}
	return { close };
}

// Last resort when the peer ignores SIGTERM: its shell is still waiting on it, so killing the peer frees both.
function killByPidFile(pidPath: string): void {
	try {
		const pid = Number(readFileSync(pidPath, "utf8").trim());
		if (pid > 0) process.kill(pid, "SIGKILL");
	} catch { /* already gone */ }
}

// Binding port 0 lets the kernel choose; the port is free again once this server closes.
export async function pickFreePort(): Promise<number> {
	const port = await bindBriefly(0);
	if (!port) throw new Error("no free port");
	return port;
}

export async function portIsFree(port: number): Promise<boolean> {
	return (await bindBriefly(port)) !== undefined;
}

// The port bound on 127.0.0.1 and released again, or undefined if it couldn't be bound.
function bindBriefly(port: number): Promise<number | undefined> {
	return new Promise((done) => {
		const probe = createServer();
		probe.once("error", () => done(undefined));
		probe.listen(port, "127.0.0.1", () => {
			const address = probe.address();
			const bound = typeof address === "object" && address ? address.port : undefined;
			probe.close(() => done(bound));
		});
	});
}

async function waitUntilListening(ports: number[], whyStopped: () => string | undefined): Promise<void> {
	const deadline = Date.now() + startupDeadlineMs;
	for (;;) {
		const stopped = whyStopped();
		if (stopped) throw new Error(stopped);
		if ((await Promise.all(ports.map(accepts))).every(Boolean)) return;
		if (Date.now() > deadline) throw new Error("port never accepted connections");
		await new Promise((done) => setTimeout(done, 20));
	}
}

function accepts(port: number): Promise<boolean> {
	return new Promise((done) => {
		const socket = createConnection({ host: "127.0.0.1", port });
		socket.once("connect", () => { socket.destroy(); done(true); });
		socket.once("error", () => { socket.destroy(); done(false); });
	});
}

export function quote(text: string): string {
	return `"${text.replace(/["\\]/g, (c) => "\\" + c)}"`;
}
