/*
	A local stand-in for the AWS endpoints the fleet tool's deploy.sh and monitor call through the real AWS CLI
	(--endpoint-url, dummy credentials). One HTTP server on 127.0.0.1 answers every service, told apart by the
	service in the request's SigV4 credential scope:
	  iot             REST-JSON (signed as execute-api): CreateStream, DeleteStream, CreateJob, DescribeJob, CancelJob, DeleteJob,
	                  ListJobExecutionsForJob, DescribeJobExecution, UpdateEventConfigurations
	  monitoring      CloudWatch, query protocol (XML answers): PutMetricAlarm, DeleteAlarms
	  cloudformation  query protocol: CreateStack, UpdateStack, DeleteStack, DescribeStacks, DescribeStackEvents,
	                  with AWS's statuses and rollbacks (stand-in-stacks.ts); the templates are kept for inspection
	  s3              PutObject (path-style)
	Jobs run by a plan on the stand-in's own clock, which every call moves on by callMs (not the host's clock: a
	busy host then sees the same round, call for call): each target's execution starts and ends at given offsets
	from the job's creation, with a given terminal status and statusDetails (or never ends); the job is COMPLETED
	once every execution has ended. `throttle` decides, per call, whether to answer 400 ThrottlingException.
	Every call is logged with the job's status at that moment, so a test can tell what was deleted while running.
*/

import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { escapeXml as escape, standInStacks, type Stack } from "./stand-in-stacks";

export interface ExecutionPlan {
	startMs: number;
	/** Undefined: the execution never ends. */
	endMs: number | undefined;
	status: "SUCCEEDED" | "FAILED" | "REJECTED" | "TIMED_OUT";
	statusDetails: { [key: string]: string };
}

export interface Call {
	service: string;
	operation: string;
	/** The access key the caller signed with (tells deploy.sh from the monitor). */
	caller: string;
	jobId: string | undefined;
	/** The job's status when the call arrived. */
	jobStatus: string | undefined;
	answer: number;
	/** On the stand-in's clock. */
	atMs: number;
	query: string;
}

interface Execution extends ExecutionPlan {
	thing: string;
	canceled: boolean;
}

interface Job {
	jobId: string;
	arn: string;
	targets: string[];
	document: string;
	createdMs: number;
	/** On the stand-in's clock. */
	createdAt: number;
	canceled: { force: boolean; comment: string | undefined; reasonCode: string | undefined } | undefined;
	rollout: unknown;
	abortConfig: unknown;
	executions: Execution[];
}

export interface StandInOptions {
	/** The plan of each execution of a job (index: the target's place in the job's targets). */
	plan?: (jobId: string, thing: string, index: number) => ExecutionPlan;
	/** Whether to throttle this call (400 ThrottlingException). */
	throttle?: (call: Omit<Call, "answer">, count: number) => boolean;
	/** DescribeStacks answers that show a stack operation under way before its end (default 0: ended at once). */
	stackSteps?: number;
}

export interface AwsStandIn {
	url: string;
	calls: Call[];
	jobs: Map<string, Job>;
	deletedJobs: string[];
	streams: Map<string, unknown>;
	alarms: Map<string, { [field: string]: string }>;
	stacks: Map<string, Stack>;
	deletedStacks: string[];
	objects: Map<string, Buffer>;
	eventConfigurations: Record<string, unknown>;
	jobStatus(jobId: string): string | undefined;
	close(): Promise<void>;
}

const region = "us-east-1", account = "123456789012";
/** How far each call moves the stand-in's clock, which execution plans run on. */
const callMs = 1000;

export function succeedAfter(startMs: number, endMs: number, downloadTime = "12.500"): ExecutionPlan {
	return { startMs, endMs, status: "SUCCEEDED", statusDetails: { state: "0", result: "1", downloadTime } };
}

export async function startAwsStandIn(options: StandInOptions = {}): Promise<AwsStandIn> {
	const plan = options.plan ?? ((_jobId, _thing, index) => succeedAfter(100 * index, 100 * index + 500));
	const calls: Call[] = [];
	const counts = new Map<string, number>();
	const jobs = new Map<string, Job>();
	let now = 0;
	const cloudformation = standInStacks(options.stackSteps ?? 0);
	const state: Omit<AwsStandIn, "url" | "close"> = {
		calls, jobs, deletedJobs: [], streams: new Map(), alarms: new Map(), stacks: cloudformation.stacks, deletedStacks: cloudformation.deletedStacks, objects: new Map(), eventConfigurations: {},
		jobStatus: (jobId) => {
			const job = jobs.get(jobId);
			return job && jobStatus(job);
		},
	};

	const executionStatus = (job: Job, execution: Execution): string => {
		const age = now - job.createdAt;
		if (execution.endMs !== undefined && age >= execution.endMs) return execution.status;
		if (execution.canceled) return "CANCELED";
		return age >= execution.startMs ? "IN_PROGRESS" : "QUEUED";
	};
	const jobStatus = (job: Job): string => {
		const statuses = job.executions.map((execution) => executionStatus(job, execution));
		if (job.canceled) return "CANCELED";
		return statuses.every((status) => status !== "QUEUED" && status !== "IN_PROGRESS") ? "COMPLETED" : "IN_PROGRESS";
	};
	const counted = (job: Job) => {
		const counts: { [status: string]: number } = {};
		for (const execution of job.executions) {
			const status = executionStatus(job, execution);
			counts[status] = (counts[status] ?? 0) + 1;
		}
		const field = (status: string) => counts[status] ?? 0;
		return {
			numberOfQueuedThings: field("QUEUED"), numberOfInProgressThings: field("IN_PROGRESS"), numberOfSucceededThings: field("SUCCEEDED"),
			numberOfFailedThings: field("FAILED"), numberOfRejectedThings: field("REJECTED"), numberOfTimedOutThings: field("TIMED_OUT"),
			numberOfCanceledThings: field("CANCELED"), numberOfRemovedThings: 0, processingTargets: [],
		};
	};

	const server = http.createServer((request, response) => {
		const chunks: Buffer[] = [];
		request.on("data", (chunk: Buffer) => chunks.push(chunk));
		request.on("end", () => {
			const body = Buffer.concat(chunks);
			const scope = /Credential=([^/]+)\/\d+\/[^/]+\/([^/]+)\//.exec(request.headers.authorization ?? "");
			// IoT's control plane signs as execute-api.
			const caller = scope?.[1] ?? "", service = scope?.[2] === "execute-api" ? "iot" : scope?.[2] ?? "";
			const url = new URL(request.url ?? "/", "http://stand-in");
			const form = request.method === "POST" && service !== "iot" && service !== "s3" ? new URLSearchParams(body.toString()) : undefined;
			const route = routeOf(service, request.method ?? "GET", url.pathname, form);
			now += callMs;
			const job = route.jobId ? jobs.get(route.jobId) : undefined;
			const call = { service, operation: route.operation, caller, jobId: route.jobId, jobStatus: job && jobStatus(job), atMs: now, query: url.search };
			const count = (counts.get(`${caller}:${route.operation}`) ?? 0) + 1;
			counts.set(`${caller}:${route.operation}`, count);
			const answer = (status: number, payload: string, headers: { [name: string]: string } = {}) => {
				calls.push({ ...call, answer: status });
				response.writeHead(status, { "content-length": Buffer.byteLength(payload), ...headers });
				response.end(payload);
			};
			const json = (value: unknown, status = 200) => answer(status, JSON.stringify(value), { "content-type": "application/json" });
			const restError = (status: number, code: string, message: string) => answer(status, JSON.stringify({ message }), { "content-type": "application/json", "x-amzn-errortype": code });
			const xml = (action: string, result: string, namespace: string) => answer(200,
				`<${action}Response xmlns="${namespace}"><${action}Result>${result}</${action}Result><ResponseMetadata><RequestId>stand-in</RequestId></ResponseMetadata></${action}Response>`,
				{ "content-type": "text/xml" });
			const queryError = (code: string, message: string, namespace: string) => answer(400,
				`<ErrorResponse xmlns="${namespace}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${escape(message)}</Message></Error><RequestId>stand-in</RequestId></ErrorResponse>`,
				{ "content-type": "text/xml" });

			if (options.throttle?.(call, count)) {
				if (service === "iot") return restError(400, "ThrottlingException", "Rate exceeded");
				return queryError("Throttling", "Rate exceeded", "http://stand-in/");
			}
			if (service === "cloudformation") {
				const namespace = "http://cloudformation.amazonaws.com/doc/2010-05-15/";
				const stackAnswer = cloudformation.answer(route.operation, form!);
				if (stackAnswer && "error" in stackAnswer) return queryError(stackAnswer.error.code, stackAnswer.error.message, namespace);
				if (stackAnswer) return xml(route.operation, stackAnswer.result, namespace);
			}
			const input = service === "iot" && body.length ? JSON.parse(body.toString()) : {};
			switch (route.operation) {
				case "PutObject":
					state.objects.set(url.pathname, body);
					return answer(200, "", { etag: '"stand-in"' });
				case "CreateStream":
					state.streams.set(route.streamId!, input);
					return json({ streamId: route.streamId, streamArn: `arn:aws:iot:${region}:${account}:stream/${route.streamId}`, description: input.description, streamVersion: 1 });
				case "DeleteStream":
					if (!state.streams.delete(route.streamId!)) return restError(404, "ResourceNotFoundException", "no such stream");
					return json({});
				case "UpdateEventConfigurations":
					state.eventConfigurations = input.eventConfigurations;
					return json({});
				case "CreateJob": {
					if (jobs.has(route.jobId!)) return restError(409, "ResourceAlreadyExistsException", `job ${route.jobId} exists`);
					const created: Job = {
						jobId: route.jobId!, arn: `arn:aws:iot:${region}:${account}:job/${route.jobId}`, targets: input.targets, document: input.document, createdMs: Date.now(), createdAt: now,
						canceled: undefined, rollout: input.jobExecutionsRolloutConfig, abortConfig: input.abortConfig,
						executions: (input.targets as string[]).map((target, index) => {
							const thing = target.split("/").pop()!;
							return { thing, canceled: false, ...plan(route.jobId!, thing, index) };
						}),
					};
					jobs.set(created.jobId, created);
					return json({ jobArn: created.arn, jobId: created.jobId, description: input.description });
				}
				case "DescribeJob": {
					if (!job) return restError(404, "ResourceNotFoundException", `job ${route.jobId} not found`);
					const status = jobStatus(job);
					return json({
						documentSource: undefined,
						job: {
							jobArn: job.arn, jobId: job.jobId, targetSelection: "SNAPSHOT", status, forceCanceled: job.canceled?.force, comment: job.canceled?.comment,
							reasonCode: job.canceled?.reasonCode, targets: job.targets, createdAt: job.createdMs / 1000, lastUpdatedAt: Date.now() / 1000,
							jobExecutionsRolloutConfig: job.rollout, abortConfig: job.abortConfig, jobProcessDetails: counted(job),
						},
					});
				}
				case "ListJobExecutionsForJob":
					if (!job) return restError(404, "ResourceNotFoundException", `job ${route.jobId} not found`);
					return json({
						executionSummaries: job.executions.map((execution, index) => ({
							thingArn: `arn:aws:iot:${region}:${account}:thing/${execution.thing}`,
							jobExecutionSummary: { status: executionStatus(job, execution), queuedAt: job.createdMs / 1000, executionNumber: index + 1 },
						})),
					});
				case "DescribeJobExecution": {
					const execution = job?.executions.find((each) => each.thing === route.thing);
					if (!job || !execution) return restError(404, "ResourceNotFoundException", "no such execution");
					const status = executionStatus(job, execution);
					const ended = status !== "QUEUED" && status !== "IN_PROGRESS" && status !== "CANCELED";
					return json({ execution: { jobId: job.jobId, status, thingArn: `arn:aws:iot:${region}:${account}:thing/${execution.thing}`,
						statusDetails: { detailsMap: ended ? execution.statusDetails : { state: "1", result: "0" } }, queuedAt: job.createdMs / 1000, executionNumber: 1, versionNumber: 2 } });
				}
				case "CancelJob":
					if (!job) return restError(404, "ResourceNotFoundException", `job ${route.jobId} not found`);
					job.canceled = { force: url.searchParams.get("force") === "true", comment: input.comment, reasonCode: input.reasonCode ?? "user" };
					for (const execution of job.executions) {
						const status = executionStatus(job, execution);
						if (status === "QUEUED" || (status === "IN_PROGRESS" && job.canceled.force)) {
							execution.canceled = true;
							execution.endMs = undefined;
						}
					}
					return json({ jobArn: job.arn, jobId: job.jobId });
				case "DeleteJob": {
					if (!job) return restError(404, "ResourceNotFoundException", `job ${route.jobId} not found`);
					const running = job.executions.some((execution) => executionStatus(job, execution) === "IN_PROGRESS");
					if (running && url.searchParams.get("force") !== "true") return restError(409, "InvalidStateTransitionException", "executions are IN_PROGRESS: use force");
					jobs.delete(job.jobId);
					state.deletedJobs.push(job.jobId);
					return json({});
				}
				case "PutMetricAlarm": {
					const fields = Object.fromEntries(form!.entries());
					state.alarms.set(fields.AlarmName, fields);
					return xml("PutMetricAlarm", "", "http://monitoring.amazonaws.com/doc/2010-08-01/");
				}
				case "DeleteAlarms":
					for (const [key, name] of form!.entries()) if (key.startsWith("AlarmNames.member.")) state.alarms.delete(name);
					return xml("DeleteAlarms", "", "http://monitoring.amazonaws.com/doc/2010-08-01/");
			}
			return restError(400, "UnknownOperationException", `${service} ${request.method} ${url.pathname} is not stood in for`);
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		...state,
		get eventConfigurations() {
			return state.eventConfigurations;
		},
		url: `http://127.0.0.1:${port}`,
		close: () => new Promise<void>((resolve) => server.close(() => resolve())),
	};
}

interface Route {
	operation: string;
	jobId?: string;
	streamId?: string;
	thing?: string;
}

function routeOf(service: string, method: string, pathname: string, form: URLSearchParams | undefined): Route {
	const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
	if (service === "s3") return { operation: method === "PUT" ? "PutObject" : `s3 ${method}` };
	if (service !== "iot") return { operation: form?.get("Action") ?? `${service} ${method}` };
	const [first, second, third, fourth] = parts;
	if (first === "streams" && method === "POST") return { operation: "CreateStream", streamId: second };
	if (first === "streams" && method === "DELETE") return { operation: "DeleteStream", streamId: second };
	if (first === "event-configurations") return { operation: "UpdateEventConfigurations" };
	if (first === "jobs" && third === "cancel") return { operation: "CancelJob", jobId: second };
	if (first === "jobs" && third === "things") return { operation: "ListJobExecutionsForJob", jobId: second };
	if (first === "jobs" && method === "PUT") return { operation: "CreateJob", jobId: second };
	if (first === "jobs" && method === "GET") return { operation: "DescribeJob", jobId: second };
	if (first === "jobs" && method === "DELETE") return { operation: "DeleteJob", jobId: second };
	if (first === "things" && third === "jobs") return { operation: "DescribeJobExecution", thing: second, jobId: fourth };
	return { operation: `iot ${method} ${pathname}` };
}
