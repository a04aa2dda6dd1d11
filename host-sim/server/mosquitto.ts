// Runs Debian's mosquitto as a real reference broker: one foreground process on 127.0.0.1, anonymous,
// nothing persisted, its config in a temp prefix removed when it stops. With tls it also listens for MQTT
// over TLS on a second port, while the plain one stays for local clients such as the AWS emulator.
import { chmodSync, copyFileSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pickFreePort, portIsFree, startPeer } from "./peer-process";

const mosquittoBinary = "/usr/sbin/mosquitto";

export type MosquittoServer = { url: string; port: number; close(): Promise<void> };

/** A TLS listener besides the plain one: clients must chain to caPem when requireCertificate is set. */
export type MosquittoTls = { caPem: string; certPem: string; keyPem: string; requireCertificate?: boolean };

export type MosquittoTlsServer = MosquittoServer & { tlsUrl: string; tlsPort: number };

export async function startMosquitto(options: { port?: number; tls: MosquittoTls }): Promise<MosquittoTlsServer>;
export async function startMosquitto(options?: { port?: number }): Promise<MosquittoServer>;
export async function startMosquitto(options: { port?: number; tls?: MosquittoTls } = {}): Promise<MosquittoServer | MosquittoTlsServer> {
	if (!existsSync(mosquittoBinary)) throw new Error("mosquitto not installed (apt-get install mosquitto)");
	const port = options.port || await pickFreePort();
	// Otherwise whatever holds the port would answer the readiness probe in mosquitto's place.
	if (options.port && !await portIsFree(port)) throw new Error(`port ${port} is in use`);
	let tlsPort: number | undefined;
	// The kernel may hand out a port just released again.
	while (options.tls && (!tlsPort || tlsPort === port)) tlsPort = await pickFreePort();
	const prefix = mkdtempSync(join(tmpdir(), "xs-ota-mosquitto-"));
	const configPath = join(prefix, "mosquitto.conf");
	let tlsListener = "";
	if (options.tls) {
		// Run as root, mosquitto switches to its own user before it loads certificates: that user must be
		// able to enter the prefix and read the copies, the private key included.
		chmodSync(prefix, 0o755);
		const copy = (from: string, name: string) => {
			copyFileSync(from, join(prefix, name));
			chmodSync(join(prefix, name), 0o644);
			return join(prefix, name);
		};
		// First in the file: mosquitto opens its listeners in order and exits when one's certificates fail
		// to load, so once the plain port accepts, the TLS listener is ready as well.
		tlsListener = `listener ${tlsPort} 127.0.0.1
cafile ${copy(options.tls.caPem, "ca.pem")}
certfile ${copy(options.tls.certPem, "cert.pem")}
keyfile ${copy(options.tls.keyPem, "key.pem")}
require_certificate ${options.tls.requireCertificate ? "true" : "false"}
tls_version tlsv1.2
`;
	}
	// No pid file: run as root, mosquitto switches to its own user, who may not write into the prefix.
	writeFileSync(configPath, `${tlsListener}listener ${port} 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
`);
	const { close } = await startPeer({
		name: "mosquitto",
		binary: mosquittoBinary,
		args: ["-c", configPath],
		prefix,
		port,
		otherPorts: tlsPort ? [tlsPort] : [],
	});
	const server = { url: `mqtt://127.0.0.1:${port}`, port, close };
	return tlsPort ? { ...server, tlsUrl: `mqtts://127.0.0.1:${tlsPort}`, tlsPort } : server;
}
