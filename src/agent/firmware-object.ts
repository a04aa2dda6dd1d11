/*
	LwM2M Firmware Update object (Object 5): the agent's model and the one source of truth for its codes.

	State (resource 3)                          Update Result (resource 5)
	  0 idle         1 downloading                0 initial        6 unsupported package type
	  2 downloaded   3 updating                   1 success        7 invalid URI
	                                              2 not enough flash  8 firmware update failed
	                                              3 out of RAM     9 unsupported protocol
	                                              4 connection lost  10 cancelled
	                                              5 integrity check failure  11 deferred

	Transitions (anything else throws "bad transition"):
	  idle        → downloading   (write Package URI; result reset to 0)
	  downloading → downloaded    (image complete and verified)
	  downloading → idle          (result 2–9; also 10 on cancel)
	  downloaded  → updating      (execute Update)
	  downloaded  → idle          (reset, or cancel with 10, or 11 deferred is reported in downloaded)
	  updating    → idle          (result 1 success, or 5 / 8 failure)
	  updating    → downloaded    (result 8: image kept, switch failed)
	  any but updating → idle with 0 on reset (empty Package URI); cancel is refused while updating.
*/

export const State = { idle: 0, downloading: 1, downloaded: 2, updating: 3 } as const;
export type StateCode = (typeof State)[keyof typeof State];

export const Result = {
	initial: 0,
	success: 1,
	notEnoughFlash: 2,
	outOfRam: 3,
	connectionLost: 4,
	integrityFailure: 5,
	unsupportedPackage: 6,
	invalidUri: 7,
	updateFailed: 8,
	unsupportedProtocol: 9,
	cancelled: 10,
	deferred: 11,
} as const;
export type ResultCode = (typeof Result)[keyof typeof Result];

export const stateNames = ["idle", "downloading", "downloaded", "updating"];
export const resultNames = [
	"initial", "success", "not enough flash", "out of ram", "connection lost", "integrity check failure",
	"unsupported package type", "invalid uri", "firmware update failed", "unsupported protocol", "cancelled", "deferred",
];

const allowed: { [from: number]: { [to: number]: readonly number[] } } = {
	[State.idle]: {
		[State.idle]: [Result.initial],
		[State.downloading]: [Result.initial],
	},
	[State.downloading]: {
		[State.downloading]: [Result.initial],
		[State.downloaded]: [Result.initial],
		[State.idle]: [Result.initial, 2, 3, 4, 5, 6, 7, 8, 9, Result.cancelled],
	},
	[State.downloaded]: {
		[State.downloaded]: [Result.initial, Result.deferred],
		[State.updating]: [Result.initial],
		[State.idle]: [Result.initial, Result.cancelled, Result.integrityFailure, Result.updateFailed],
	},
	[State.updating]: {
		[State.idle]: [Result.success, Result.integrityFailure, Result.updateFailed],
		[State.downloaded]: [Result.updateFailed],
	},
};

export function canTransition(from: StateCode, to: StateCode, result: ResultCode): boolean {
	const results = allowed[from]?.[to];
	return results !== undefined && results.indexOf(result) >= 0;
}

export function isFailure(result: ResultCode): boolean {
	return result >= Result.notEnoughFlash && result <= Result.cancelled;
}

export interface FirmwareStatus {
	state: StateCode;
	result: ResultCode;
}

/** Holds State and Update Result and refuses transitions Object 5 does not allow. */
export class FirmwareObject implements FirmwareStatus {
	state: StateCode;
	result: ResultCode;
	#onChange: (status: FirmwareStatus) => void;

	constructor(status: FirmwareStatus, onChange: (status: FirmwareStatus) => void) {
		this.state = status.state;
		this.result = status.result;
		this.#onChange = onChange;
	}

	move(state: StateCode, result: ResultCode): void {
		if (!canTransition(this.state, state, result))
			throw new Error(`bad transition ${stateNames[this.state]} to ${stateNames[state]} with ${result}`);
		const changed = state !== this.state || result !== this.result;
		this.state = state;
		this.result = result;
		if (changed)
			this.#onChange(this);
	}
}
