// Runs the system nginx as a real reference peer for resumable downloads: one foreground process,
// everything it writes kept in a temp prefix so it runs as root without touching /var or /etc.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const nginxBinary = "/usr/sbin/nginx";
const startupDeadlineMs = 10_000;
const stopGraceMs = 5_000;

export type NginxServer = { url: string; port: number; close(): Promise<void> };

// nginx never reads its stdin, so a small shell stands between: it keeps the pipe from Node and stops
// nginx when that pipe closes, whether close() ended it or Node died (even by SIGKILL) without cleaning up;
// then it removes the temp prefix.
const watchdogScript = `
exec 3<&0
"$@" </dev/null &
nginx=$!
{ read -r ignored <&3; kill -TERM "$nginx" 2>/dev/null; } &
watcher=$!
wait "$nginx"
status=$?
kill "$watcher" 2>/dev/null
rm -rf -- "$NGINX_PREFIX"
exit "$status"
`;

export async function startNginx(options: { dir: string; port?: number }): Promise<NginxServer> {
	if (!existsSync(nginxBinary)) throw new Error("nginx not installed (apt-get install nginx-light)");
	const port = options.port || await pickFreePort();
	// Otherwise whatever holds the port would answer the readiness probe in nginx's place.
	if (options.port && !await portIsFree(port)) throw new Error(`port ${port} is in use`);
	const prefix = mkdtempSync(join(tmpdir(), "xs-ota-nginx-"));
	const configPath = join(prefix, "nginx.conf");
	writeFileSync(configPath, nginxConfig(prefix, resolve(options.dir), port));

	const nginxArguments = ["-p", prefix + "/", "-c", configPath, "-e", join(prefix, "error.log")];
	const child = spawn("/bin/sh", ["-c", watchdogScript, "nginx-watchdog", nginxBinary, ...nginxArguments], {
		stdio: ["pipe", "ignore", "pipe"],
		env: { ...process.env, NGINX_PREFIX: prefix },
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
	// A test that forgets close() must not keep Node alive: when Node exits the pipe closes and nginx stops.
	child.unref();
	(child.stdin as unknown as Socket).unref();
	(child.stderr as unknown as Socket).unref();

	const stop = async () => {
		child.ref();
		(child.stderr as unknown as Socket).ref();
		let timer: NodeJS.Timeout | undefined;
		if (child.exitCode === null && child.signalCode === null) {
			child.stdin!.end();
			timer = setTimeout(() => killByPidFile(join(prefix, "nginx.pid")), stopGraceMs);
		}
		await exited; // also once nginx died by itself, so all of its stderr has been read
		clearTimeout(timer);
		rmSync(prefix, { recursive: true, force: true });
	};
	let stopping: Promise<void> | undefined;
	const close = () => (stopping ??= stop());

	try {
		await waitUntilListening(port, () => spawnError?.message ?? (child.exitCode !== null || child.signalCode !== null ? "exited" : undefined));
	} catch (error) {
		await close();
		const detail = stderr.trim() || (error as Error).message;
		throw new Error(`nginx did not start: ${detail}`);
	}
	return { url: `http://127.0.0.1:${port}`, port, close };
}

function nginxConfig(prefix: string, root: string, port: number): string {
	const at = (name: string) => quote(join(prefix, name));
	return `daemon off;
master_process off;
worker_processes 1;
pid ${at("nginx.pid")};
error_log ${at("error.log")} warn;
events {}
http {
	access_log ${at("access.log")};
	client_body_temp_path ${at("client_body")};
	proxy_temp_path ${at("proxy")};
	fastcgi_temp_path ${at("fastcgi")};
	uwsgi_temp_path ${at("uwsgi")};
	scgi_temp_path ${at("scgi")};
	types {}
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:${port};
		root ${quote(root)};
		location / { }
	}
}
`;
}

// Last resort when nginx ignores SIGTERM: its shell is still waiting on it, so killing nginx frees both.
function killByPidFile(pidPath: string): void {
	try {
		const pid = Number(readFileSync(pidPath, "utf8").trim());
		if (pid > 0) process.kill(pid, "SIGKILL");
	} catch { /* already gone */ }
}

function quote(text: string): string {
	return `"${text.replace(/["\\]/g, (c) => "\\" + c)}"`;
}

// Binding port 0 lets the kernel choose; the port is free again once this server closes.
async function pickFreePort(): Promise<number> {
	const port = await bindBriefly(0);
	if (!port) throw new Error("no free port");
	return port;
}

async function portIsFree(port: number): Promise<boolean> {
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

async function waitUntilListening(port: number, whyStopped: () => string | undefined): Promise<void> {
	const deadline = Date.now() + startupDeadlineMs;
	for (;;) {
		const stopped = whyStopped();
		if (stopped) throw new Error(stopped);
		if (await accepts(port)) return;
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
