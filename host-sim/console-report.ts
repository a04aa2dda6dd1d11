// A simulated board's events as people read them (xs-ota device without --json, and the demo): one line per
// event that matters, State and Update Result with their names, a progress bar on a terminal (none in a log
// file or a pipe), and a closing line that says how the run ended.

import type { DeviceOutcome, DeviceReport } from "./device";
import { resultNames, stateNames } from "../src/agent/firmware-object";

const barWidth = 40;

export class ConsoleReport {
	#write: (text: string) => void;
	#terminal: boolean;
	#bar = "";
	#logs: boolean;

	/** `logs`: also print the device's own log lines (indented). */
	constructor(options: { logs: boolean; terminal?: boolean; write?: (text: string) => void }) {
		this.#logs = options.logs;
		this.#terminal = options.terminal ?? process.stdout.isTTY === true;
		this.#write = options.write ?? ((text) => process.stdout.write(text));
	}

	readonly show = (event: DeviceReport): void => {
		if (event.event === "progress") return this.#progress(event.received as number, event.total as number);
		const line = this.#lineFor(event);
		if (line !== undefined) this.line(line);
	};

	/** A line of its own, after the progress bar if one is showing. */
	line(text: string): void {
		if (this.#bar) this.#write("\n");
		this.#bar = "";
		this.#write(`${text}\n`);
	}

	/** The closing line: how the run ended, the state it left, what runs, what was fetched, how long it listened for CoAP. */
	summary(outcome: DeviceOutcome): string {
		const how = { idle: "idle", "shut-down": "shut down in order", "power-cut": "power cut", "time-up": "--run-for reached" }[outcome.end];
		const fetched = outcome.bytesFetched + outcome.mqttBytesReceived;
		return `${how}: ${stateAndResult(outcome.state, outcome.result)}; running ${outcome.running.version} from slot ${outcome.running.slot}; ` +
			`${fetched.toLocaleString("en")} bytes received` +
			(outcome.listeningMs ? `; CoAP socket open ${(outcome.listeningMs / 1000).toFixed(1)} s` : "");
	}

	#lineFor(event: DeviceReport): string | undefined {
		switch (event.event) {
			case "log": return this.#logs ? `  ${event.message}` : undefined;
			case "boot": return `boot: slot ${event.slot}, firmware ${event.version}${event.rolledBack ? " (rolled back)" : ""}`;
			case "state": return stateAndResult(event.state as number, event.result as number);
			case "result": return `update ${event.updateId} ended: ${resultNames[event.result as number] ?? event.result}${event.version ? ` ${event.version}` : ""}${event.reason ? ` (${event.reason})` : ""}`;
			case "power-cut": return `POWER CUT during persistent write #${event.op} (${event.kind})${event.bytesFetched ? ` after ${event.bytesFetched} bytes` : ""}`;
			case "maintenance": return `${event.kind} maintenance ${event.status}${event.nextStart ? `, next at ${new Date(event.nextStart as number).toISOString()}` : ""}`;
			case "shutdown": return "orderly shutdown: state persisted";
			case "unreachable": return `jobs service unreachable: ${event.reason}`;
			default: return undefined;
		}
	}

	#progress(received: number, total: number): void {
		if (!this.#terminal) return;
		const filled = total ? Math.round((received / total) * barWidth) : 0;
		const line = `\r[${"#".repeat(filled)}${".".repeat(barWidth - filled)}] ${String(Math.round((received / (total || 1)) * 100)).padStart(3)}%  ${received}/${total}`;
		if (line !== this.#bar) this.#write(line);
		this.#bar = line;
	}
}

export function stateAndResult(state: number, result: number): string {
	return `State ${state} (${stateNames[state] ?? "?"}), Update Result ${result} (${resultNames[result] ?? "?"})`;
}
