// A local LwM2M 1.1 Bootstrap-Server over CoAP/UDP (NoSec) for demos and tests, on the npm `coap` library
// (OMA-TS-LightweightM2M_Core-V1_1 §6.1, Transport §6.4.1).
//
//   POST /bs?ep=NAME[&pct=F]  → 2.04, then, as CON requests from the same socket to the address and port the
//                               request came from, the endpoint's plan; by default:
//     DELETE /                  everything but the client's Bootstrap-Server account
//     PUT /0/1                  the server account: Server URI, Bootstrap-Server false, NoSec, Short Server ID 1
//     PUT /1/1                  Short Server ID 1, lifetime, Notification Storing false, binding U
//     POST /bs                  Bootstrap-Finish
// A step answered otherwise than expected (an error, by default) ends the session without Finish (as Wakaama's bootstrap server does). Each answer
// is emitted ("step"), then the session's end ("finished", with Finish's code or the failed step's).

import { EventEmitter } from "node:events";
import * as dgram from "node:dgram";
import type { Agent, IncomingMessage, OutgoingMessage, Server } from "coap";
import { contentFormats, encode, type Lwm2mFormat, type Lwm2mValue } from "./lwm2m-formats";
import { pathOf, queryOf, sendRequest, serveOn } from "./lwm2m-server";

/** One request of a plan; `expect`: the code that lets the session go on (any 2.xx by default). */
export type BootstrapStep = { expect?: string } & (
	| { method: "DELETE"; path: string }
	| { method: "PUT"; path: string; value: Lwm2mValue; format?: Lwm2mFormat }
	| { method: "GET"; path: string; accept?: number }
	| { method: "POST"; path: "/bs" });

export interface StepAnswer {
	endpoint: string;
	/** The endpoint's bootstrap sessions so far, this one included. */
	attempt: number;
	step: BootstrapStep;
	code: string;
	payload: string;
}

/** The steps that provision `serverUri` as the LwM2M server of Short Server ID `ssid`. */
export function provisionSteps(serverUri: string, options: { ssid?: number; lifetime?: number; instance?: number } = {}): BootstrapStep[] {
	const ssid = options.ssid ?? 1, instance = options.instance ?? 1, empty = Buffer.alloc(0);
	return [
		{ method: "DELETE", path: "/" },
		{ method: "PUT", path: `/0/${instance}`, value: { 0: serverUri, 1: false, 2: 3, 3: empty, 4: empty, 5: empty, 10: ssid } },
		{ method: "PUT", path: `/1/${instance}`, value: { 0: ssid, 1: options.lifetime ?? 300, 6: false, 7: "U" } },
		{ method: "POST", path: "/bs" },
	];
}

export class Lwm2mBootstrapServer extends EventEmitter {
	readonly port: number;
	readonly url: string;
	/** Bootstrap-Requests per endpoint. */
	readonly requests = new Map<string, number>();
	/** The steps for an endpoint's `attempt`-th session (1-based); provisionSteps(serverUri) unless changed. */
	plan: (endpoint: string, attempt: number) => BootstrapStep[];
	readonly #socket: dgram.Socket;
	readonly #server: Server;
	readonly #agent: Agent;
	readonly #log: (line: string) => void;

	private constructor(socket: dgram.Socket, serverUri: string, log: (line: string) => void) {
		super();
		this.#socket = socket;
		this.#log = log;
		this.plan = () => provisionSteps(serverUri);
		({ port: this.port, url: this.url, server: this.#server, agent: this.#agent } = serveOn(socket, (request, response) => this.#handle(request, response)));
	}

	/** `serverUri`: the LwM2M server the default plan provisions. */
	static start(options: { serverUri: string; port?: number; host?: string; log?: (line: string) => void }): Promise<Lwm2mBootstrapServer> {
		return new Promise((resolve, reject) => {
			const socket = dgram.createSocket("udp4");
			socket.once("error", reject);
			socket.bind(options.port ?? 0, options.host ?? "127.0.0.1", () => {
				socket.off("error", reject);
				resolve(new Lwm2mBootstrapServer(socket, options.serverUri, options.log ?? (() => {})));
			});
		});
	}

	close(): Promise<void> {
		return new Promise((resolve) => {
			this.#agent.close();
			this.#server.close();
			this.#socket.close(() => resolve());
		});
	}

	#handle(request: IncomingMessage, response: OutgoingMessage): void {
		const path = pathOf(request), endpoint = queryOf(request).get("ep");
		const reply = (code: string) => {
			response.code = code;
			response.end();
		};
		if (path.length !== 1 || path[0] !== "bs") return reply("4.04");
		if (request.method !== "POST") return reply("4.05");
		if (!endpoint) return reply("4.00");
		const attempt = (this.requests.get(endpoint) ?? 0) + 1;
		this.requests.set(endpoint, attempt);
		this.#log(`${endpoint} bootstrap request ${attempt} from ${request.rsinfo.address}:${request.rsinfo.port}`);
		this.emit("request", { endpoint, attempt });
		reply("2.04");
		void this.#provision({ endpoint, address: request.rsinfo.address, port: request.rsinfo.port }, attempt);
	}

	async #provision(client: { endpoint: string; address: string; port: number }, attempt: number): Promise<void> {
		let code = "";
		for (const step of this.plan(client.endpoint, attempt)) {
			const format = step.method === "PUT" ? step.format ?? "tlv" : undefined;
			try {
				const response = await sendRequest(this.#agent, this.#log, client, {
					method: step.method, path: step.path,
					...(step.method === "PUT" ? { format: contentFormats[format!], payload: encode(format!, step.path, step.value) } : {}),
					...(step.method === "GET" ? { accept: step.accept } : {}),
				});
				code = response.code;
				this.emit("step", { endpoint: client.endpoint, attempt, step, code, payload: response.payload.toString("utf8") } satisfies StepAnswer);
			}
			catch (error) {
				code = "no answer";
				this.#log(`${client.endpoint}: ${(error as Error).message}`);
			}
			if (step.expect ? code !== step.expect : !code.startsWith("2.")) break;
		}
		this.#log(`${client.endpoint} bootstrap ${attempt} ended: ${code}`);
		this.emit("finished", { endpoint: client.endpoint, attempt, code });
	}
}
