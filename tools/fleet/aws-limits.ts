/*
	What AWS accepts in the requests the fleet tool writes, one table per API, field by field, as the API
	references document them: IoT CreateJob and CreateStream, CloudWatch PutMetricAlarm, IoT
	UpdateEventConfigurations. A path names a field ("a.b"), "[]" every item of a list, "*" every value of a
	map. fieldProblems() checks a request against its table and the rules that tie fields together.
*/

import { periodProblem, snsTopicsPerAlarm, validStat } from "./deployment-config";

type Check = (value: unknown) => string | undefined;

export interface FieldProblem {
	path: string;
	problem: string;
}

const show = (value: unknown) => (typeof value === "string" ? (value.length > 60 ? `${value.slice(0, 57)}…` : value) : JSON.stringify(value));

function text(min: number, max: number, pattern?: RegExp, required = false): Check {
	return (value) => {
		if (value === undefined) return required ? "missing" : undefined;
		if (typeof value !== "string") return `${show(value)} is not a string`;
		if (value.length < min || value.length > max) return `${show(value)} is ${value.length} characters; aws takes ${min} to ${max}`;
		if (pattern && !pattern.test(value)) return `${show(value)} does not match ${pattern.source}`;
		return undefined;
	};
}

function numeric(min: number, max: number, integer: boolean, decimals = Infinity, required = false): Check {
	return (value) => {
		if (value === undefined) return required ? "missing" : undefined;
		if (typeof value !== "number" || !Number.isFinite(value) || (integer && !Number.isInteger(value))) return `${show(value)} is not ${integer ? "a whole number" : "a number"}`;
		if (value < min || value > max) return `${value} is outside ${min} to ${max}`;
		const places = (/\.(\d+)$/.exec(String(value))?.[1] ?? "").length;
		if (places > decimals) return `${value} has more than ${decimals} decimals`;
		return undefined;
	};
}

function list(min: number, max: number, required = false): Check {
	return (value) => {
		if (value === undefined) return required ? "missing" : undefined;
		if (!Array.isArray(value)) return "is not a list";
		return value.length < min || value.length > max ? `${value.length} items; aws takes ${min} to ${max}` : undefined;
	};
}

function oneOf(values: readonly string[], required = false): Check {
	return (value) => {
		if (value === undefined) return required ? "missing" : undefined;
		return values.includes(value as string) ? undefined : `${show(value)} is not one of ${values.join(", ")}`;
	};
}

const boolean: Check = (value) => (value === undefined || typeof value === "boolean" ? undefined : `${show(value)} is not a boolean`);
const id = /^[a-zA-Z0-9_-]+$/;
const printable = /^[^\p{C}]*$/u;
const unlimited = Number.MAX_SAFE_INTEGER;

export const eventTypes = ["THING", "THING_GROUP", "THING_TYPE", "THING_GROUP_MEMBERSHIP", "THING_GROUP_HIERARCHY", "THING_TYPE_ASSOCIATION", "JOB", "JOB_EXECUTION", "POLICY", "CERTIFICATE", "CA_CERTIFICATE"] as const;

export const apiFields: { [api: string]: { [path: string]: Check } } = {
	CreateJob: {
		jobId: text(1, 64, id, true),
		targets: list(1, unlimited, true),
		"targets[]": text(1, 2048, /^arn:/),
		document: text(0, 32768),
		description: text(0, 2028, printable),
		targetSelection: oneOf(["CONTINUOUS", "SNAPSHOT"]),
		"presignedUrlConfig.roleArn": text(20, 2048),
		"presignedUrlConfig.expiresInSec": numeric(60, 3600, true),
		"jobExecutionsRolloutConfig.maximumPerMinute": numeric(1, 1000, true),
		"jobExecutionsRolloutConfig.exponentialRate.baseRatePerMinute": numeric(1, 1000, true),
		"jobExecutionsRolloutConfig.exponentialRate.incrementFactor": numeric(1.1, 5, false, 1),
		"jobExecutionsRolloutConfig.exponentialRate.rateIncreaseCriteria.numberOfNotifiedThings": numeric(1, unlimited, true),
		"jobExecutionsRolloutConfig.exponentialRate.rateIncreaseCriteria.numberOfSucceededThings": numeric(1, unlimited, true),
		"abortConfig.criteriaList": list(1, unlimited),
		"abortConfig.criteriaList[].action": oneOf(["CANCEL"], true),
		"abortConfig.criteriaList[].failureType": oneOf(["FAILED", "REJECTED", "TIMED_OUT", "ALL"], true),
		"abortConfig.criteriaList[].thresholdPercentage": numeric(0, 100, false, 2),
		"abortConfig.criteriaList[].minNumberOfExecutedThings": numeric(1, unlimited, true),
		"timeoutConfig.inProgressTimeoutInMinutes": numeric(1, 10080, true),
	},
	CreateStream: {
		streamId: text(1, 128, id, true),
		description: text(0, 2028, printable),
		files: list(1, 50, true),
		"files[].fileId": numeric(0, 255, true),
		"files[].s3Location.bucket": text(1, unlimited, /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, true),
		"files[].s3Location.key": text(1, unlimited, undefined, true),
		roleArn: text(20, 2048, undefined, true),
	},
	PutMetricAlarm: {
		AlarmName: text(1, 255, undefined, true),
		AlarmDescription: text(0, 1024),
		ActionsEnabled: boolean,
		AlarmActions: list(0, snsTopicsPerAlarm),
		"AlarmActions[]": text(1, 1024),
		MetricName: text(1, 255),
		Namespace: text(1, 255, /^[^:].*$/),
		Statistic: oneOf(["SampleCount", "Average", "Sum", "Minimum", "Maximum"]),
		ExtendedStatistic: (value) => (value === undefined || (typeof value === "string" && /^p/.test(value) && validStat(value)) ? undefined : `${show(value)} is not a percentile p0 to p100`),
		Dimensions: list(0, 30),
		"Dimensions[].Name": text(1, 255, undefined, true),
		"Dimensions[].Value": text(1, 1024, undefined, true),
		Period: numeric(1, unlimited, true, 0, true),
		Unit: text(1, 64),
		EvaluationPeriods: numeric(1, unlimited, true, 0, true),
		DatapointsToAlarm: numeric(1, unlimited, true),
		Threshold: numeric(-Number.MAX_VALUE, Number.MAX_VALUE, false, Infinity, true),
		ComparisonOperator: oneOf(["GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"], true),
		TreatMissingData: oneOf(["breaching", "notBreaching", "ignore", "missing"]),
	},
	UpdateEventConfigurations: {
		eventConfigurations: (value) => {
			if (!value || typeof value !== "object") return "missing";
			const unknown = Object.keys(value).find((type) => !(eventTypes as readonly string[]).includes(type));
			return unknown ? `${unknown} is not an event type` : undefined;
		},
		"eventConfigurations.*.Enabled": boolean,
	},
};

type Request = { [field: string]: unknown };

/** Rules between fields, per API: each returns the field at fault and the problem. */
const crossRules: { [api: string]: ((request: Request) => FieldProblem | undefined)[] } = {
	PutMetricAlarm: [
		(request) => (request.Statistic === undefined) === (request.ExtendedStatistic === undefined) ? { path: "Statistic", problem: "give exactly one of Statistic and ExtendedStatistic" } : undefined,
		(request) => {
			const problem = periodProblem(request.Period as number, request.EvaluationPeriods as number);
			return problem ? { path: problem.startsWith(`${request.Period} must`) ? "Period" : "EvaluationPeriods", problem } : undefined;
		},
		(request) => (request.DatapointsToAlarm as number) > (request.EvaluationPeriods as number) ? { path: "DatapointsToAlarm", problem: `${request.DatapointsToAlarm} is more than EvaluationPeriods ${request.EvaluationPeriods}` } : undefined,
	],
	CreateJob: [
		(request) => {
			const criteria = (request.jobExecutionsRolloutConfig as { exponentialRate?: { rateIncreaseCriteria?: object } } | undefined)?.exponentialRate?.rateIncreaseCriteria;
			return criteria && !Object.keys(criteria).length ? { path: "jobExecutionsRolloutConfig.exponentialRate.rateIncreaseCriteria", problem: "needs numberOfNotifiedThings or numberOfSucceededThings" } : undefined;
		},
	],
};

/** The values at `path` in `request`, each with its concrete path ("files[0].fileId"). */
function valuesAt(request: unknown, path: string): { path: string; value: unknown }[] {
	let found: { path: string; value: unknown }[] = [{ path: "", value: request }];
	for (const part of path.split(".")) {
		const name = part.replace(/\[\]$/, "");
		const each = part.endsWith("[]");
		found = found.flatMap(({ path: at, value }) => {
			if (name === "*") return value && typeof value === "object" ? Object.entries(value).map(([key, item]) => ({ path: `${at}.${key}`, value: item })) : [];
			const child = value && typeof value === "object" ? (value as Request)[name] : undefined;
			const where = at ? `${at}.${name}` : name;
			if (!each) return [{ path: where, value: child }];
			return Array.isArray(child) ? child.map((item, index) => ({ path: `${where}[${index}]`, value: item })) : [];
		});
	}
	return found;
}

/** Every way `request` strays from what `api` accepts: unknown fields, values, and the rules between them. */
export function fieldProblems(api: string, request: Request): FieldProblem[] {
	const fields = apiFields[api];
	const problems: FieldProblem[] = [];
	const tops = new Set(Object.keys(fields).map((path) => path.split(/[.[]/)[0]));
	for (const name of Object.keys(request)) if (!tops.has(name)) problems.push({ path: name, problem: `is not a field of ${api}` });
	for (const [path, check] of Object.entries(fields))
		for (const found of valuesAt(request, path)) {
			const problem = check(found.value);
			if (problem) problems.push({ path: found.path, problem });
		}
	for (const rule of crossRules[api] ?? []) {
		const problem = rule(request);
		if (problem) problems.push(problem);
	}
	return problems;
}
