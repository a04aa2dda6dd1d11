/*
	The flags of a command: declared once, with what each takes and means, so that parsing, --help and the
	refusal of an unknown flag (with the nearest known one as a hint) agree. `--name value`, `--name=value`;
	a flag declared without a value is a switch. -h and --help print the command's flags.
*/

export type Flags = { [name: string]: string | true };

export interface FlagSpec {
	name: string;
	/** What the value is (FILE, N, URL…); none for a switch. */
	value?: string;
	help: string;
}

export interface CommandSpec {
	/** "xs-ota fleet", "xs-ota job create", … */
	usage: string;
	summary: string;
	flags: FlagSpec[];
}

/** A mistake in how the command was called: the caller prints it and exits 2. */
export class UsageError extends Error {}

/** Asked for help: the caller prints `text` and exits 0. */
export class HelpRequest extends Error {
	constructor(readonly text: string) {
		super("help");
	}
}

export function helpText(spec: CommandSpec): string {
	const width = Math.max(...spec.flags.map((flag) => `--${flag.name}${flag.value ? ` ${flag.value}` : ""}`.length), 10);
	return [
		`usage: ${spec.usage} [flags]`,
		spec.summary,
		"",
		...spec.flags.map((flag) => `  ${`--${flag.name}${flag.value ? ` ${flag.value}` : ""}`.padEnd(width)}  ${flag.help}`),
		`  ${"-h, --help".padEnd(width)}  print this and exit`,
		"",
	].join("\n");
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
	let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
	for (let i = 1; i <= a.length; i++) {
		const row = [i];
		for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
		previous = row;
	}
	return previous[b.length];
}

/** The known word nearest `word`, when near enough to be what was meant. */
export function nearest(word: string, known: string[]): string | undefined {
	let best: string | undefined, bestDistance = Infinity;
	for (const each of known) {
		const d = each.startsWith(word) || word.startsWith(each) ? 1 : distance(word, each);
		if (d < bestDistance) [best, bestDistance] = [each, d];
	}
	return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

export function parseFlags(args: string[], spec: CommandSpec): Flags {
	const flags: Flags = {};
	const known = new Map(spec.flags.map((flag) => [flag.name, flag]));
	for (let i = 0; i < args.length; i++) {
		if (args[i] === "-h" || args[i] === "--help") throw new HelpRequest(helpText(spec));
	}
	for (let i = 0; i < args.length; i++) {
		const match = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(args[i]);
		if (!match) throw new UsageError(`unexpected argument ${args[i]} (${spec.usage} --help lists the flags)`);
		const flag = known.get(match[1]);
		if (!flag) {
			const hint = nearest(match[1], [...known.keys()]);
			throw new UsageError(`--${match[1]} is not a flag of ${spec.usage}${hint ? `: did you mean --${hint}?` : ""} (--help lists them)`);
		}
		if (flag.name in flags) throw new UsageError(`--${flag.name} is given twice`);
		if (!flag.value) {
			if (match[2] !== undefined) throw new UsageError(`--${flag.name} takes no value`);
			flags[flag.name] = true;
		}
		else if (match[2] !== undefined) flags[flag.name] = match[2];
		// A value may start with dashes (a PEM's "-----BEGIN"), just not look like a flag.
		else if (i + 1 < args.length && !/^--[a-z]/.test(args[i + 1])) flags[flag.name] = args[++i];
		else throw new UsageError(`--${flag.name} needs a value (${flag.value})`);
	}
	return flags;
}
