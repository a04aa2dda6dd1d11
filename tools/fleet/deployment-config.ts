/*
	The seed's deployment configuration (dev.ini), read as its Python tool reads it and checked into the AWS
	shapes the rollout needs. Sections and their switches:
	  DEFAULT                       thingList, binName, roleArn, jobId, rounds, bucket, cleanUpCfg, debug,
	                                defaultDelay, region, streamId, iotApiSleepTime, fileChunkSize (or the
	                                seed sample's fileChunckSize), targetSelection, use* switches
	  CUSTOM_JOB_DOCUMENT           useCustomJobDocument: jobDocSrcCfg local_file | url, jobDocPath, jobDocSrcUrl
	  PRESIGNED_URL_CONFIG          usePresignedUrlConfig: roleArn, expiresInSec
	  JOB_EXECUTE_ROLLOUT_CONFIG    useJobExecutionsRolloutConfig: maximumPerMinute, useExponentialRateCfg
	  EXP_RATE_CONFIG               baseRatePerMinute, incrementFactor, useRateIncreaseCriteria
	  INCREASE_CRITERIA             numberOfNotifiedThings, numberOfSucceededThings
	  ABORT_CONFIG                  useAbortConfig: use{All,Failed,Rejected,TimedOut}Subsection (All overrides the rest)
	  ABORT_CONFIG_TYPE_<type>      failureType, thresholdPercentage, minNumberOfExecutedThings
	  TIMEOUT_CONFIG                useTimeoutConfig: inProgressTimeoutInMinutes
	  ALARM_CONFIG                  alarmList, naming ALARM_CONFIG_<name> sections (namespace, metricName, stat,
	                                period, threshold, alarmType, evaluationPeriods, datapointsToAlarm, snsTopics)
	A section whose switch is off is not read, as in the seed. Unknown sections and keys, unfilled placeholders
	(a value holding <…>, as the seed's sample does), values out of the ranges AWS accepts, and settings that
	contradict each other are errors naming file:line and key; every error of the file is reported at once
	(ConfigErrors), each read that fails falling back so the rest can still be checked.
*/

import * as fs from "node:fs";
import * as path from "node:path";
import { parseIni, type Ini } from "./ini";

/** Every problem of one configuration file, one a line. */
export class ConfigErrors extends Error {
	constructor(readonly problems: string[]) {
		super(problems.join("\n"));
	}
}

/** A problem already recorded: the read that met it stops, the others go on. */
class Recorded extends Error {}

export type AlarmType = "upper" | "lower";

/** One ALARM_CONFIG alarm, as configured. */
export interface AlarmRule {
	name: string;
	namespace: string;
	metricName: string;
	/** SampleCount, Average, Sum, Minimum, Maximum or a percentile p0 to p100. */
	stat: string;
	periodSeconds: number;
	threshold: number;
	type: AlarmType;
	evaluationPeriods: number;
	datapointsToAlarm: number;
	snsTopics: string[];
}

const simpleStats = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

/** PutMetricAlarm's Statistic values, or ExtendedStatistic's percentiles p0 to p100 with at most 2 decimals. */
export function validStat(stat: string): boolean {
	if (simpleStats.includes(stat)) return true;
	const match = /^p(\d{1,3}(\.\d{1,2})?)$/.exec(stat);
	return match !== null && Number(match[1]) <= 100;
}

/** PutMetricAlarm's Period: 10, 20, 30 (high resolution) or a multiple of 60; its evaluation span, in seconds. */
export function periodProblem(period: number, evaluationPeriods: number): string | undefined {
	if (![10, 20, 30].includes(period) && period % 60) return `${period} must be 10, 20, 30 or a multiple of 60`;
	const span = period * evaluationPeriods, limit = period < 3600 ? 86400 : 604800;
	if (span > limit) return `${evaluationPeriods} periods of ${period} s span ${span} s, over the ${limit} s aws allows ${period < 3600 ? "for periods under an hour" : "(7 days)"}`;
	return undefined;
}

/** A value the user was meant to replace: the seed's sample writes them as <yourJobId>, <region>, … */
const placeholder = /<[^<>]*>/;
export const snsTopicsPerAlarm = 5;

export type FailureType = "FAILED" | "REJECTED" | "TIMED_OUT" | "ALL";

export interface AbortCriterion {
	failureType: FailureType;
	action: "CANCEL";
	thresholdPercentage: number;
	minNumberOfExecutedThings: number;
}

export interface RolloutConfig {
	maximumPerMinute: number;
	exponentialRate?: {
		baseRatePerMinute: number;
		incrementFactor: number;
		rateIncreaseCriteria: { numberOfNotifiedThings?: number; numberOfSucceededThings?: number };
	};
}

export type CustomJobDocument = { source: "local_file"; path: string } | { source: "url"; url: string };

export interface DeploymentConfig {
	/** The folder of the configuration file: relative paths in it start there. */
	dir: string;
	source: string;
	thingList: string | undefined;
	binName: string | undefined;
	roleArn: string | undefined;
	jobId: string;
	rounds: number;
	bucket: string | undefined;
	cleanUp: boolean;
	debug: boolean;
	defaultDelaySeconds: number;
	region: string | undefined;
	streamId: string;
	targetSelection: "SNAPSHOT" | "CONTINUOUS";
	customJobDocument: CustomJobDocument | undefined;
	presignedUrlConfig: { roleArn: string; expiresInSec: number } | undefined;
	rollout: RolloutConfig | undefined;
	abortCriteria: AbortCriterion[] | undefined;
	inProgressTimeoutInMinutes: number | undefined;
	alarms: AlarmRule[];
	/** "file:line: SECTION.key" for a key of the file (the line when the key is written there). */
	where: (key: string) => string;
}

const abortTypes: { [section: string]: { type: FailureType; switch: string } } = {
	ABORT_CONFIG_TYPE_ALL: { type: "ALL", switch: "useAllSubsection" },
	ABORT_CONFIG_TYPE_FAILED: { type: "FAILED", switch: "useFailedSubsection" },
	ABORT_CONFIG_TYPE_REJECTED: { type: "REJECTED", switch: "useRejectedSubsection" },
	ABORT_CONFIG_TYPE_TIMED_OUT: { type: "TIMED_OUT", switch: "useTimedOutSubsection" },
};
const abortKeys = ["failureType", "thresholdPercentage", "minNumberOfExecutedThings"];
const alarmKeys = ["namespace", "metricName", "stat", "period", "threshold", "alarmType", "evaluationPeriods", "datapointsToAlarm", "snsTopics"];

/** The keys each section may hold. */
const sectionKeys: { [section: string]: string[] } = {
	DEFAULT: [
		"thingList", "binName", "roleArn", "jobId", "rounds", "bucket", "cleanUpCfg", "debug", "defaultDelay", "region",
		"streamId", "iotApiSleepTime", "fileChunkSize", "fileChunckSize", "targetSelection", "useCustomJobDocument",
		"usePresignedUrlConfig", "useJobExecutionsRolloutConfig", "useAbortConfig", "useTimeoutConfig",
	],
	CUSTOM_JOB_DOCUMENT: ["jobDocSrcCfg", "jobDocSrcUrl", "jobDocPath"],
	PRESIGNED_URL_CONFIG: ["roleArn", "expiresInSec"],
	JOB_EXECUTE_ROLLOUT_CONFIG: ["maximumPerMinute", "useExponentialRateCfg"],
	EXP_RATE_CONFIG: ["baseRatePerMinute", "incrementFactor", "useRateIncreaseCriteria"],
	INCREASE_CRITERIA: ["numberOfNotifiedThings", "numberOfSucceededThings"],
	ABORT_CONFIG: Object.values(abortTypes).map((each) => each.switch),
	...Object.fromEntries(Object.keys(abortTypes).map((section) => [section, abortKeys])),
	TIMEOUT_CONFIG: ["inProgressTimeoutInMinutes"],
	ALARM_CONFIG: ["alarmList"],
};

/** Reads one section's values, each error naming the section and key. */
class Section {
	constructor(readonly ini: Ini, readonly name: string, readonly problems: string[]) {}

	where(key: string): string {
		const entry = this.#entry(key);
		return `${this.ini.source}${entry ? `:${entry.line}` : ""}: ${this.name}.${entry?.name ?? key}`;
	}

	fail(key: string, message: string): never {
		this.problems.push(`${this.where(key)}: ${message}`);
		throw new Recorded();
	}

	#entry(key: string) {
		try {
			return this.ini.get(this.name, key);
		}
		catch (error) {
			this.problems.push((error as Error).message);
			throw new Recorded();
		}
	}

	/** The value, or undefined when the key is missing, empty or None; an unfilled placeholder is an error. */
	optional(key: string): string | undefined {
		const value = this.#entry(key)?.value;
		if (value !== undefined && placeholder.test(value)) this.fail(key, `${value} is an unfilled placeholder: put the real value there`);
		return value === undefined || value === "" || value === "None" ? undefined : value;
	}

	text(key: string): string {
		return this.optional(key) ?? this.fail(key, "missing");
	}

	integer(key: string, min: number, max = Number.MAX_SAFE_INTEGER, fallback?: number): number {
		const text = this.optional(key);
		if (text === undefined) return fallback ?? this.fail(key, "missing");
		if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max)
			this.fail(key, `${text} must be a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? " up" : ` to ${max}`}`);
		return Number(text);
	}

	number(key: string): number {
		const text = this.text(key);
		if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) this.fail(key, `${text} is not a number`);
		return Number(text);
	}

	/** A number from min to max with at most `decimals` digits after the point (AWS's rule for rates and percentages). */
	decimal(key: string, min: number, max: number, decimals: number, fallback?: number): number {
		if (this.optional(key) === undefined && fallback !== undefined) return fallback;
		const value = this.number(key);
		const places = (/\.(\d*?)0*$/.exec(this.text(key))?.[1] ?? "").length;
		if (value < min || value > max || places > decimals)
			this.fail(key, `${this.text(key)} must be from ${min} to ${max} with at most ${decimals} decimal${decimals === 1 ? "" : "s"}`);
		return value;
	}

	/** configparser's getboolean: 1/yes/true/on and 0/no/false/off, any case. */
	flag(key: string): boolean {
		const text = this.optional(key);
		if (text === undefined) return false;
		const lower = text.toLowerCase();
		if (["1", "yes", "true", "on"].includes(lower)) return true;
		if (["0", "no", "false", "off"].includes(lower)) return false;
		return this.fail(key, `${text} is not a boolean (True or False)`);
	}

	oneOf<T extends string>(key: string, values: readonly T[], fallback?: T): T {
		const text = this.optional(key);
		if (text === undefined) return fallback ?? this.fail(key, "missing");
		if (!values.includes(text as T)) this.fail(key, `${text} must be ${values.join(" or ")}`);
		return text as T;
	}

	list(key: string): string[] {
		return (this.optional(key) ?? "").split(",").map((item) => item.trim()).filter(Boolean);
	}
}

export function readDeploymentConfig(file: string): DeploymentConfig {
	let text: string;
	try {
		text = fs.readFileSync(file, "utf8");
	}
	catch {
		throw new Error(`cannot read ${file}`);
	}
	return parseDeploymentConfig(text, file);
}

export function parseDeploymentConfig(text: string, source: string): DeploymentConfig {
	const ini = parseIni(text, source, true);
	const problems: string[] = [...ini.errors];
	/** The value `read` gives, or `fallback` when it met a problem (recorded, so the rest can be checked). */
	const read = <T>(fallback: T, read: () => T): T => {
		try {
			return read();
		}
		catch (error) {
			if (!(error instanceof Recorded)) throw error;
			return fallback;
		}
	};
	checkKeys(ini, problems);
	const section = (name: string) => new Section(ini, name, problems);
	/** A section switched on by `key` of `by`: it must be there. */
	const switched = (by: Section, key: string, name: string): Section | undefined => {
		if (!by.flag(key)) return undefined;
		if (!ini.has(name)) by.fail(key, `is True but there is no [${name}] section`);
		return section(name);
	};
	const base = section("DEFAULT");
	const rounds = read(1, () => base.integer("rounds", 1, Number.MAX_SAFE_INTEGER, 1));
	const cleanUp = read(true, () => base.flag("cleanUpCfg"));
	read(undefined, () => rounds > 1 && !cleanUp && base.fail("cleanUpCfg", "must be True when rounds is more than 1 (each round deletes its job)"));
	const targetSelection = read("SNAPSHOT" as const, () => base.oneOf("targetSelection", ["SNAPSHOT", "CONTINUOUS"] as const, "SNAPSHOT"));
	read(undefined, () => rounds > 1 && targetSelection === "CONTINUOUS" && base.fail("rounds", "must be 1 with a CONTINUOUS job, which never completes"));
	read(undefined, () => {
		if (base.optional("fileChunkSize") !== undefined && base.optional("fileChunckSize") !== undefined)
			base.fail("fileChunckSize", "repeats fileChunkSize: give one of them");
		base.integer(base.optional("fileChunkSize") !== undefined ? "fileChunkSize" : "fileChunckSize", 1, Number.MAX_SAFE_INTEGER, 8192);
	});
	read(0, () => base.decimal("iotApiSleepTime", 0, Number.MAX_SAFE_INTEGER, 3, 0));
	const optional = (key: string) => read(undefined, () => base.optional(key));

	const config: DeploymentConfig = {
		dir: path.dirname(path.resolve(source)),
		source,
		thingList: optional("thingList"),
		binName: optional("binName"),
		roleArn: optional("roleArn"),
		jobId: read("", () => base.text("jobId")),
		rounds,
		bucket: optional("bucket"),
		cleanUp,
		debug: read(false, () => base.flag("debug")),
		defaultDelaySeconds: read(0, () => base.decimal("defaultDelay", 0, Number.MAX_SAFE_INTEGER, 3, 0)),
		region: optional("region"),
		streamId: read("", () => base.text("streamId")),
		targetSelection,
		customJobDocument: read(undefined, () => customDocument(switched(base, "useCustomJobDocument", "CUSTOM_JOB_DOCUMENT"))),
		presignedUrlConfig: read(undefined, () => presignedUrl(switched(base, "usePresignedUrlConfig", "PRESIGNED_URL_CONFIG"))),
		rollout: read(undefined, () => rollout(switched(base, "useJobExecutionsRolloutConfig", "JOB_EXECUTE_ROLLOUT_CONFIG"), switched)),
		abortCriteria: read(undefined, () => abortCriteria(switched(base, "useAbortConfig", "ABORT_CONFIG"), switched)),
		inProgressTimeoutInMinutes: read(undefined, () => switched(base, "useTimeoutConfig", "TIMEOUT_CONFIG")?.integer("inProgressTimeoutInMinutes", 1, 10080)),
		alarms: alarms(ini, problems, read),
		where: (key) => {
			const [name, entry] = key.split(".");
			return section(name).where(entry);
		},
	};
	if (problems.length) throw new ConfigErrors(problems);
	return config;
}

/** Every section is one the seed knows, and holds only keys it knows. */
function checkKeys(ini: Ini, problems: string[]): void {
	for (const name of ini.sections.keys()) {
		const known = sectionKeys[name] ?? (name.startsWith("ALARM_CONFIG_") ? alarmKeys : undefined);
		if (!known) {
			problems.push(`${ini.source}:${ini.sectionLine(name)}: [${name}] is not a section of the deployment configuration`);
			continue;
		}
		const lower = new Set(known.map((key) => key.toLowerCase()));
		for (const unknown of ini.own(name).filter((entry) => !lower.has(entry.name.toLowerCase())))
			problems.push(`${ini.source}:${unknown.line}: ${name}.${unknown.name}: unknown key (${name} takes ${known.join(", ")})`);
	}
}

function customDocument(section: Section | undefined): CustomJobDocument | undefined {
	if (!section) return undefined;
	const source = section.oneOf("jobDocSrcCfg", ["local_file", "url"] as const);
	return source === "local_file" ? { source, path: section.text("jobDocPath") } : { source, url: section.text("jobDocSrcUrl") };
}

function presignedUrl(section: Section | undefined): DeploymentConfig["presignedUrlConfig"] {
	if (!section) return undefined;
	return { roleArn: section.text("roleArn"), expiresInSec: section.integer("expiresInSec", 60, 3600, 3600) };
}

type Switched = (by: Section, key: string, name: string) => Section | undefined;

function rollout(section: Section | undefined, switched: Switched): RolloutConfig | undefined {
	if (!section) return undefined;
	const maximumPerMinute = section.integer("maximumPerMinute", 1, 1000);
	const exponential = switched(section, "useExponentialRateCfg", "EXP_RATE_CONFIG");
	if (!exponential) return { maximumPerMinute };
	const baseRatePerMinute = exponential.integer("baseRatePerMinute", 1, 1000);
	if (baseRatePerMinute > maximumPerMinute)
		exponential.fail("baseRatePerMinute", `${baseRatePerMinute} exceeds JOB_EXECUTE_ROLLOUT_CONFIG.maximumPerMinute ${maximumPerMinute}`);
	const incrementFactor = exponential.decimal("incrementFactor", 1.1, 5, 1);
	if (!exponential.flag("useRateIncreaseCriteria"))
		exponential.fail("useRateIncreaseCriteria", "must be True: an exponential rate needs the INCREASE_CRITERIA that raise it");
	const criteria = switched(exponential, "useRateIncreaseCriteria", "INCREASE_CRITERIA")!;
	const rateIncreaseCriteria: { numberOfNotifiedThings?: number; numberOfSucceededThings?: number } = {};
	for (const key of ["numberOfNotifiedThings", "numberOfSucceededThings"] as const)
		if (criteria.optional(key) !== undefined) rateIncreaseCriteria[key] = criteria.integer(key, 1);
	if (!Object.keys(rateIncreaseCriteria).length) criteria.fail("numberOfNotifiedThings", "missing, and so is numberOfSucceededThings: give one");
	return { maximumPerMinute, exponentialRate: { baseRatePerMinute, incrementFactor, rateIncreaseCriteria } };
}

function abortCriteria(section: Section | undefined, switched: Switched): AbortCriterion[] | undefined {
	if (!section) return undefined;
	const chosen = Object.keys(abortTypes).filter((name) => section.flag(abortTypes[name].switch));
	if (!chosen.length) section.fail("useAllSubsection", `is False, and so are the other ${Object.keys(abortTypes).length - 1} switches: set one`);
	// As in the seed: the ALL criterion replaces the others.
	const used = chosen.includes("ABORT_CONFIG_TYPE_ALL") ? ["ABORT_CONFIG_TYPE_ALL"] : chosen;
	return used.map((name) => {
		const criterion = switched(section, abortTypes[name].switch, name)!;
		const failureType = criterion.oneOf("failureType", ["FAILED", "REJECTED", "TIMED_OUT", "ALL"] as const);
		if (failureType !== abortTypes[name].type) criterion.fail("failureType", `${failureType} contradicts the section, which is for ${abortTypes[name].type}`);
		return {
			failureType,
			action: "CANCEL",
			thresholdPercentage: criterion.decimal("thresholdPercentage", 0, 100, 2),
			minNumberOfExecutedThings: criterion.integer("minNumberOfExecutedThings", 1),
		};
	});
}

function alarms(ini: Ini, problems: string[], read: <T>(fallback: T, read: () => T) => T): AlarmRule[] {
	if (!ini.has("ALARM_CONFIG")) return [];
	const config = new Section(ini, "ALARM_CONFIG", problems);
	const names = read([], () => config.list("alarmList"));
	return names.flatMap((name, index) => read([], () => {
		if (names.indexOf(name) !== index) config.fail("alarmList", `names ${name} twice`);
		const sectionName = `ALARM_CONFIG_${name}`;
		if (!ini.has(sectionName)) config.fail("alarmList", `names ${name} but there is no [${sectionName}] section`);
		const alarm = new Section(ini, sectionName, problems);
		const stat = read("Average", () => {
			const stat = alarm.text("stat");
			if (!validStat(stat)) alarm.fail("stat", `${stat} must be SampleCount, Average, Sum, Minimum, Maximum or p0 to p100 (at most 2 decimals)`);
			return stat;
		});
		const periodSeconds = read(60, () => alarm.integer("period", 10));
		const evaluationPeriods = read(1, () => alarm.integer("evaluationPeriods", 1));
		read(undefined, () => {
			const problem = periodProblem(periodSeconds, evaluationPeriods);
			if (problem) alarm.fail(problem.startsWith(`${periodSeconds} must`) ? "period" : "evaluationPeriods", problem);
		});
		const snsTopics = read([], () => alarm.list("snsTopics"));
		read(undefined, () => snsTopics.length > snsTopicsPerAlarm && alarm.fail("snsTopics", `${snsTopics.length} topics: an alarm action list holds at most ${snsTopicsPerAlarm}`));
		const rule: AlarmRule = {
			name,
			namespace: read("", () => alarm.text("namespace")),
			metricName: read("", () => alarm.text("metricName")),
			stat,
			periodSeconds,
			threshold: read(0, () => alarm.number("threshold")),
			type: read("upper" as AlarmType, () => alarm.oneOf("alarmType", ["upper", "lower"] as const)),
			evaluationPeriods,
			datapointsToAlarm: read(1, () => alarm.integer("datapointsToAlarm", 1, evaluationPeriods, evaluationPeriods)),
			snsTopics,
		};
		return [rule];
	}));
}
