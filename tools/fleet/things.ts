/*
	The thing list of a deployment (the seed's thingList.txt): one target a line, as a thing ARN
	(arn:aws:iot:<region>:<account>:thing/<name>), a thing group ARN (…:thinggroup/<name>) or a bare thing
	name. Blank lines and lines starting with "#" are skipped; commas and spaces also separate entries.
*/

export interface Target {
	kind: "thing" | "thinggroup";
	name: string;
	/** The full ARN when the list gave one. */
	arn: string | undefined;
	line: number;
}

const thingName = /^[a-zA-Z0-9:_-]{1,128}$/;
const targetArn = /^arn:aws[a-z-]*:iot:[a-z0-9-]+:\d{12}:(thing|thinggroup)\/([a-zA-Z0-9:_-]{1,128})$/;

export function parseThingList(text: string, source: string): Target[] {
	const targets: Target[] = [];
	const seen = new Set<string>();
	text.split(/\r\n|\r|\n/).forEach((raw, index) => {
		const line = index + 1;
		if (raw.trim().startsWith("#")) return;
		for (const word of raw.split(/[\s,]+/).filter(Boolean)) {
			const arn = targetArn.exec(word);
			if (!arn && !thingName.test(word)) throw new Error(`${source}:${line}: ${word} is neither a thing name nor a thing or thing group arn`);
			const target: Target = arn
				? { kind: arn[1] as Target["kind"], name: arn[2], arn: word, line }
				: { kind: "thing", name: word, arn: undefined, line };
			const key = `${target.kind}/${target.name}`;
			if (seen.has(key)) throw new Error(`${source}:${line}: ${target.kind} ${target.name} is listed twice`);
			seen.add(key);
			targets.push(target);
		}
	});
	if (!targets.length) throw new Error(`${source}: no things listed`);
	return targets;
}

/** The names of the things to simulate; a thing group cannot be, as its members are unknown here. */
export function simulatedThings(targets: Target[], source: string): string[] {
	const group = targets.find((target) => target.kind === "thinggroup");
	if (group) throw new Error(`${source}:${group.line}: thing group ${group.name} cannot be simulated: list its things, or use --boards`);
	return targets.map((target) => target.name);
}

/** Generated names for --boards N: thing-0001, thing-0002, … */
export function numberedThings(count: number): string[] {
	const width = Math.max(4, String(count).length);
	return Array.from({ length: count }, (_, index) => `thing-${String(index + 1).padStart(width, "0")}`);
}
