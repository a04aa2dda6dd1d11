// Runs Debian's mosquitto as a real reference broker: one foreground process on 127.0.0.1, anonymous,
// nothing persisted, its config and pid in a temp prefix removed when it stops.
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pickFreePort, portIsFree, startPeer } from "./peer-process";

const mosquittoBinary = "/usr/sbin/mosquitto";

export type MosquittoServer = { url: string; port: number; close(): Promise<void> };

export async function startMosquitto(options: { port?: number } = {}): Promise<MosquittoServer> {
	if (!existsSync(mosquittoBinary)) throw new Error("mosquitto not installed (apt-get install mosquitto)");
	const port = options.port || await pickFreePort();
	// Otherwise whatever holds the port would answer the readiness probe in mosquitto's place.
	if (options.port && !await portIsFree(port)) throw new Error(`port ${port} is in use`);
	const prefix = mkdtempSync(join(tmpdir(), "xs-ota-mosquitto-"));
	const configPath = join(prefix, "mosquitto.conf");
	// No pid file: run as root, mosquitto switches to its own user, who may not write into the prefix.
	writeFileSync(configPath, `listener ${port} 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
`);
	const { close } = await startPeer({ name: "mosquitto", binary: mosquittoBinary, args: ["-c", configPath], prefix, port });
	return { url: `mqtt://127.0.0.1:${port}`, port, close };
}
