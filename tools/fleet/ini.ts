/*
	INI files as Python's configparser reads them (ConfigParser with its defaults), so that a deployment
	configuration written for the seed's Python tool reads the same here:
	  [SECTION] headers, section names case-sensitive; DEFAULT is the section every other one falls back to
	  key = value or key: value, split at the first "=" or ":"; keys case-insensitive; spaces around both trimmed
	  lines starting with "#" or ";" are comments (no inline comments); an indented line continues the value above
	  %(key)s is replaced by another key's value in the same section (or DEFAULT), %% is a "%"
	  a duplicate section, a duplicate key in one section, a key before any section or a line without a
	  delimiter is an error; all of a file's are reported together, one a line.
*/

export interface IniEntry {
	/** The key as written (lookups ignore case). */
	name: string;
	value: string;
	line: number;
}

const maxInterpolationDepth = 10;

export class Ini {
	/** Sections in file order, DEFAULT included when present; each maps lower-cased keys to entries. */
	readonly sections = new Map<string, Map<string, IniEntry>>();
	readonly #headerLines = new Map<string, number>();
	readonly source: string;
	/** The syntax errors met, one a line ("file:line: …"); the lines in error were skipped. */
	readonly errors: string[] = [];

	constructor(source: string) {
		this.source = source;
	}

	/** The line of a section's header. */
	sectionLine(section: string): number | undefined {
		return this.#headerLines.get(section);
	}

	addSection(name: string, line: number): Map<string, IniEntry> {
		const entries = new Map<string, IniEntry>();
		this.sections.set(name, entries);
		this.#headerLines.set(name, line);
		return entries;
	}

	has(section: string): boolean {
		return this.sections.has(section);
	}

	/** The section's own entries, without those DEFAULT lends it. */
	own(section: string): IniEntry[] {
		return [...(this.sections.get(section)?.values() ?? [])];
	}

	/** A key's entry in `section`, or in DEFAULT when the section lacks it; the value interpolated. */
	get(section: string, key: string): IniEntry | undefined {
		const entry = this.#raw(section, key.toLowerCase());
		return entry && { ...entry, value: this.#interpolate(section, entry, entry.value, 1) };
	}

	#raw(section: string, key: string): IniEntry | undefined {
		return this.sections.get(section)?.get(key) ?? this.sections.get("DEFAULT")?.get(key);
	}

	#interpolate(section: string, entry: IniEntry, value: string, depth: number): string {
		if (depth > maxInterpolationDepth) throw this.#error(entry.line, `${entry.name}: interpolation deeper than ${maxInterpolationDepth}`);
		return value.replace(/%(%|\(([^)]*)\)s|.?)/g, (_match, what: string, name: string | undefined) => {
			if (what === "%") return "%";
			if (name === undefined) throw this.#error(entry.line, `${entry.name}: "%" must be followed by "%" or "(name)s"`);
			const other = this.#raw(section, name.toLowerCase());
			if (!other) throw this.#error(entry.line, `${entry.name}: %(${name})s names no key`);
			return this.#interpolate(section, entry, other.value, depth + 1);
		});
	}

	#error(line: number, message: string): Error {
		return new Error(`${this.source}:${line}: ${message}`);
	}
}

/** The file's sections; its syntax errors throw, all together, unless `tolerant` (then they are in ini.errors). */
export function parseIni(text: string, source = "config", tolerant = false): Ini {
	const ini = new Ini(source);
	const errors = ini.errors;
	const error = (line: number, message: string) => errors.push(`${source}:${line}: ${message}`);
	let section: { name: string; entries: Map<string, IniEntry> } | undefined;
	// The entry an indented line would continue, and the blank lines met since (kept inside the value).
	let last: { entry: IniEntry; indent: number; blanks: number } | undefined;
	const lines = text.replace(/^\uFEFF/, "").split(/\r\n|\r|\n/);
	for (let index = 0; index < lines.length; index++) {
		const raw = lines[index], number = index + 1;
		const stripped = raw.trim();
		if (stripped.startsWith("#") || stripped.startsWith(";")) continue;
		if (!stripped) {
			if (last) last.blanks++;
			continue;
		}
		const indent = raw.length - raw.trimStart().length;
		if (last && indent > last.indent) {
			last.entry.value += "\n".repeat(last.blanks + 1) + stripped;
			last.blanks = 0;
			continue;
		}
		const header = /^\[(.+)\]$/.exec(stripped);
		if (header) {
			const name = header[1];
			if (ini.sections.has(name)) error(number, `duplicate section [${name}]`);
			section = { name, entries: ini.sections.get(name) ?? ini.addSection(name, number) };
			last = undefined;
			continue;
		}
		last = undefined;
		if (!section) {
			error(number, "a key before any [section]");
			continue;
		}
		const delimiter = stripped.search(/[=:]/);
		if (delimiter <= 0) {
			error(number, delimiter === 0 ? "a value without a key" : `"${stripped}" has no "=" or ":"`);
			continue;
		}
		const name = stripped.slice(0, delimiter).trim();
		const key = name.toLowerCase();
		if (section.entries.has(key)) {
			error(number, `duplicate key ${name} in [${section.name}]`);
			continue;
		}
		const entry = { name, value: stripped.slice(delimiter + 1).trim(), line: number };
		section.entries.set(key, entry);
		last = { entry, indent, blanks: 0 };
	}
	if (errors.length && !tolerant) throw new Error(errors.join("\n"));
	return ini;
}
