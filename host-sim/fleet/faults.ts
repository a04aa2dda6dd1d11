/*
	The fault profile of a simulated fleet, and which boards suffer what. Each share picks exactly
	round(share × boards) boards from one seeded permutation, in the order offline, dead, cut, slow, self-test,
	so a profile and a seed always hit the same boards and no board suffers two faults (the shares add up to 1
	at most). Every other board has the profile's link speed and none of the faults.
*/

import { seeded } from "../random";

export interface FaultProfile {
	/** Share of boards whose power is cut during the update, cutsPerBoard times, each cut lasting downtimeMinutes. */
	cutShare: number;
	cutsPerBoard: number;
	downtimeMinutes: number;
	/** Share of boards whose power is cut during the update and never comes back. */
	deadShare: number;
	/** Share of boards that stay off for the whole rollout: their executions stay QUEUED. */
	offlineShare: number;
	/** Probability that the service loses any one of its MQTT messages. */
	messageLoss: number;
	/** Link speed of every board, and of the slow ones. */
	linkKbps: number;
	slowShare: number;
	slowLinkKbps: number;
	/** Share of boards whose new image fails its self-test (config.failSelfTest): they roll back and report FAILED. */
	selfTestFailShare: number;
	seed: number;
}

export const defaultFaults: FaultProfile = {
	cutShare: 0,
	cutsPerBoard: 1,
	downtimeMinutes: 1,
	deadShare: 0,
	offlineShare: 0,
	messageLoss: 0,
	linkKbps: 1000,
	slowShare: 0,
	slowLinkKbps: 50,
	selfTestFailShare: 0,
	seed: 1,
};

export interface BoardFaults {
	cuts: number;
	dead: boolean;
	offline: boolean;
	linkKbps: number;
	failSelfTest: boolean;
}

/** The faults of each of `count` boards, in board order. */
export function assignFaults(count: number, profile: FaultProfile): BoardFaults[] {
	const shares = [profile.offlineShare, profile.deadShare, profile.cutShare, profile.slowShare, profile.selfTestFailShare];
	const sizes = shares.map((share) => Math.round(share * count));
	if (sizes.reduce((sum, size) => sum + size, 0) > count) throw new Error("the fault shares add up to more boards than there are");
	const random = seeded(profile.seed * 7919 + 1);
	const order = Array.from({ length: count }, (_, index) => index);
	for (let i = count - 1; i > 0; i--) {
		const j = Math.floor(random() * (i + 1));
		[order[i], order[j]] = [order[j], order[i]];
	}
	// fault[board]: the index of its share in `shares`, or -1.
	const fault = new Array<number>(count).fill(-1);
	let next = 0;
	sizes.forEach((size, share) => {
		for (const board of order.slice(next, next + size)) fault[board] = share;
		next += size;
	});
	return fault.map((which) => ({
		// A dead board needs the cut that kills it.
		cuts: which === 2 ? profile.cutsPerBoard : which === 1 ? 1 : 0,
		dead: which === 1,
		offline: which === 0,
		linkKbps: which === 3 ? profile.slowLinkKbps : profile.linkKbps,
		failSelfTest: which === 4,
	}));
}
