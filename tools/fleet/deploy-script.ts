/*
	deploy.sh: the deployment's AWS CLI calls in order, for POSIX sh.
	  1. upload the image; 2. the stream; 3. JOB_EXECUTION events on, and the stacks (the topics', the monitor's)
	  brought to this deployment's templates; 4. per round: point the downloadTime alarms at the round's job,
	  create the job, wait for it, check it, delete it (cleanUpCfg); 5. cleanup (cleanUpCfg): the stream and the alarms.
	No job is created unless every stack is CREATE_COMPLETE or UPDATE_COMPLETE with this deployment's template (or
	already had it): an alarm whose topic or metric pipeline is missing could never fire. Any other end of a stack
	is an error, with the reason of its newest failed resource. A stack an earlier attempt left ROLLBACK_COMPLETE
	can only be deleted, as AWS allows: --recreate-rolled-back does so and creates it again.
	A running job is never destroyed by accident:
	  - every call is retried (TRIES times, the pause doubling from PAUSE s up to 60 s) when AWS throttles or
	    fails on its side or the network does; other errors are final;
	  - a status that could not be read is UNKNOWN, never "done": the wait goes on, up to WAIT seconds a round;
	  - a job still running when the wait ends, or interrupted, is left running and so are the stream and the
	    alarms it needs (exit 4); only `./deploy.sh --abort` cancels and deletes jobs that still run;
	  - a job is deleted only once it is COMPLETED or CANCELED, without --force (a canceled job whose devices
	    are still at work refuses, and is left).
	Exit: 0 every round succeeded; 1 a round or a stack failed, or AWS refused a call; 4 a job was left running.
*/

import * as path from "node:path";
import { roundJobId } from "./aws-documents";
import type { DeploymentConfig } from "./deployment-config";

export interface ScriptInputs {
	region: string;
	bucket: string;
	key: string;
	image: string;
	alarmFiles: string[];
	alarmNames: string[];
	/** Per alarm: whether it watches the job's downloadTime (it follows each round's job). */
	watchesJob: boolean[];
	/** The stacks to bring to their templates, in order, and the files of the templates. */
	stacks: { name: string; file: string }[];
}

/** Exit code of deploy.sh when it left a job running. */
export const leftRunningExitCode = 4;

export function quote(text: string): string {
	return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The seconds a round may take: the in-progress timeout (or a day) plus the time the rollout rate needs. */
function waitSeconds(config: DeploymentConfig, things: number): number {
	const perMinute = config.rollout ? (config.rollout.exponentialRate?.baseRatePerMinute ?? config.rollout.maximumPerMinute) : 1000;
	return (config.inProgressTimeoutInMinutes ?? 1440) * 60 + Math.ceil(things / perMinute) * 60 + 600;
}

export function deployScript(config: DeploymentConfig, inputs: ScriptInputs, things = 1): string {
	const jobs = Array.from({ length: config.rounds }, (_, index) => roundJobId(config, index + 1));
	const followers = inputs.alarmFiles.filter((_, index) => inputs.watchesJob[index]);
	const lines = [
		"#!/bin/sh",
		`# Written by xs-ota fleet --target aws from ${path.basename(config.source)}; nothing has been sent anywhere.`,
		"# Review the documents in this folder, then run this script from it:",
		"#   ./deploy.sh           deploy; a job still running when the wait ends is left running (exit 4)",
		"#   ./deploy.sh --abort   cancel and delete this deployment's jobs, running or not, then clean up",
		"#   ./deploy.sh --recreate-rolled-back   deploy, first deleting a stack that a failed creation left ROLLBACK_COMPLETE",
		"# A throttled or failed call is retried; a status that could not be read never counts as done.",
		"# Exit: 0 every round succeeded, 1 a round or a stack failed, or aws refused a call, 4 a job was left running.",
		"set -u",
		`REGION=${quote(inputs.region)}`,
		"POLL=${POLL:-30}      # seconds between two looks at a running job or stack operation",
		"TRIES=${TRIES:-5}     # tries of a call that aws throttles or that fails on its side or the network",
		"PAUSE=${PAUSE:-1}     # seconds before the second try; doubles, up to 60",
		`WAIT=\${WAIT:-${waitSeconds(config, things)}}  # seconds a round may run before the script stops waiting`,
		"STACK_WAIT=${STACK_WAIT:-3600}  # seconds a stack operation may take",
		`JOBS=${quote(jobs.join(" "))}`,
		`STREAM=${quote(config.streamId)}`,
		"ERR=$(mktemp)",
		"trap 'rm -f \"$ERR\"' EXIT",
		"trap 'echo \"deploy: interrupted: nothing was deleted; ./deploy.sh --abort stops the jobs\" >&2; exit 4' INT TERM",
		"",
		'log() { echo "deploy: $*" >&2; }',
		"",
		"# call [--expect WORDS] ARGS…: aws ARGS, tried again while the failure is one a retry can cure; prints what aws",
		"# printed. A final error is said, unless it holds WORDS (the caller expects it: it is in $ERR).",
		"call() {",
		"\texpected=''",
		'\tif [ "$1" = --expect ]; then expected=$2; shift 2; fi',
		"\ttry=1",
		"\tpause=$PAUSE",
		'\twhile ! out=$(aws "$@" --region "$REGION" 2>"$ERR"); do',
		'\t\twhy=$(grep -v "^$" "$ERR" | tail -n 1)',
		'\t\tcase "$why" in',
		"\t\t*Throttl*|*TooManyRequests*|*RequestLimitExceeded*|*SlowDown*|*ServiceUnavailable*|*InternalFailure*|*InternalServer*|*InternalError*|*\"Could not connect\"*|*timeout*|*Connection*) ;;",
		'\t\t*)',
		'\t\t\tif [ -z "$expected" ] || [ "${why#*"$expected"}" = "$why" ]; then log "aws $1 $2: $why"; fi',
		"\t\t\treturn 1 ;;",
		"\t\tesac",
		'\t\tif [ "$try" -ge "$TRIES" ]; then log "aws $1 $2 failed $TRIES times: $why"; return 1; fi',
		'\t\tlog "aws $1 $2 failed (try $try of $TRIES), again in ${pause}s: $why"',
		'\t\tsleep "$pause"',
		"\t\ttry=$((try + 1))",
		"\t\tpause=$(awk \"BEGIN { p = $pause * 2; print (p > 60 ? 60 : p) }\")",
		"\tdone",
		"\tprintf '%s\\n' \"$out\"",
		"}",
		"",
		"# status JOB: the job's status, or UNKNOWN when it could not be read.",
		'status() { call iot describe-job --job-id "$1" --query job.status --output text || echo UNKNOWN; }',
		"",
		"# settle WHAT LIMIT ENDED LOOK…: runs LOOK every POLL seconds, at most LIMIT seconds, until ENDED accepts the",
		"# status it prints; prints that status. Fails if LOOK fails, or if the status has not ended by then.",
		"settle() {",
		"\twhat=$1 limit=$2 ended=$3",
		"\tshift 3",
		"\tdeadline=$(($(date +%s) + limit))",
		"\twhile :; do",
		'\t\tstate=$("$@") || return 1',
		'\t\tif "$ended" "$state"; then echo "$state"; return 0; fi',
		'\t\tif [ "$(date +%s)" -ge "$deadline" ]; then log "$what is still $state after ${limit}s"; return 1; fi',
		'\t\tsleep "$POLL"',
		"\tdone",
		"}",
		"",
		'job_ended() { case "$1" in COMPLETED|CANCELED) return 0 ;; esac; return 1; }',
		"",
		"# finished JOB: waits until the job is COMPLETED or CANCELED, at most WAIT seconds; fails if it still runs then.",
		'finished() { settle "job $1" "$WAIT" job_ended status "$1" >/dev/null; }',
		"",
		...stackFunctions(),
		"",
		"# remove JOB: deletes the job once it has ended; a job that has not (or may not have) is left.",
		"remove() {",
		'\tstate=$(status "$1")',
		'\tcase "$state" in',
		'\tCOMPLETED|CANCELED) call iot delete-job --job-id "$1" >/dev/null && return 0 ;;',
		"\tesac",
		'\tlog "job $1 is $state: not deleted"',
		"\treturn 1",
		"}",
		"",
		"cleanup() {",
		`\tcall iot delete-stream --stream-id "$STREAM" >/dev/null`,
		...(inputs.alarmNames.length ? [`\tcall cloudwatch delete-alarms --alarm-names ${inputs.alarmNames.map(quote).join(" ")} >/dev/null`] : []),
		"}",
		"",
		'if [ "${1:-}" = --abort ]; then',
		"\tleft=0",
		"\tfor job in $JOBS; do",
		'\t\tstate=$(status "$job")',
		'\t\tcase "$state" in',
		"\t\tUNKNOWN) continue ;;",
		'\t\tIN_PROGRESS|SCHEDULED) call iot cancel-job --job-id "$job" --force >/dev/null || { left=1; continue; } ;;',
		"\t\tesac",
		'\t\tcall iot delete-job --job-id "$job" --force >/dev/null || left=1',
		"\tdone",
		'\t[ "$left" -eq 0 ] && cleanup',
		"\texit $((left * 4))",
		"fi",
		"RECREATE=no",
		'if [ "${1:-}" = --recreate-rolled-back ]; then RECREATE=yes; shift; fi',
		'[ "$#" -eq 0 ] || { echo "usage: ./deploy.sh [--abort | --recreate-rolled-back]" >&2; exit 2; }',
		"",
		"# 1. The image, where the stream reads it from.",
		`call s3 cp ${quote(inputs.image)} ${quote(`s3://${inputs.bucket}/${inputs.key}`)} >/dev/null || exit 1`,
		"# 2. The stream.",
		"call iot create-stream --cli-input-json file://create-stream.json >/dev/null || exit 1",
		"# 3. Job execution events (the downloadTime metric's source); the stacks of the topics the alarms notify and the",
		"#    monitor stack that turns the events into the metric, each brought to this deployment's template.",
		"call iot update-event-configurations --cli-input-json file://event-configurations.json >/dev/null || exit 1",
		...inputs.stacks.map((stack) => `stack ${quote(stack.name)} ${quote(stack.file)} || exit 1`),
	];
	const others = inputs.alarmFiles.filter((_, index) => !inputs.watchesJob[index]);
	if (others.length) lines.push("# The alarms on other metrics.", ...others.map((file) => `call cloudwatch put-metric-alarm --cli-input-json ${quote(`file://${file}`)} >/dev/null || exit 1`));
	if (config.targetSelection === "CONTINUOUS") {
		lines.push(
			"",
			"# 4. The job. A CONTINUOUS job never completes: follow it with xs-ota fleet monitor, and remove it with",
			"#    ./deploy.sh --abort when you are done with it.",
			...followers.map((file) => `call cloudwatch put-metric-alarm --cli-input-json ${quote(`file://${file}`)} >/dev/null || exit 1`),
			"call iot create-job --cli-input-json file://create-job.json >/dev/null || exit 1",
			"",
		);
		return lines.join("\n");
	}
	lines.push(
		"",
		`# 4. The job, ${config.rounds === 1 ? "once" : `${config.rounds} rounds`}: a round that does not end COMPLETED with every execution SUCCEEDED`,
		"#    stops the deployment.",
		"failed=0",
		"left=''",
		"for job in $JOBS; do",
		...followers.map((file) => `\tcall cloudwatch put-metric-alarm --cli-input-json ${quote(`file://${file}`)} --dimensions "Name=jobId,Value=$job" >/dev/null || { failed=1; break; }`),
		'\tif ! call iot create-job --cli-input-json file://create-job.json --job-id "$job" >/dev/null; then',
		"\t\t# A try that timed out may still have created it; one of that id may be there from before: either may run.",
		`\t\tif grep -q AlreadyExists "$ERR"; then log "job $job exists already: left as it is"; left=$job; failed=${leftRunningExitCode}; break; fi`,
		'\t\tcase "$(status "$job")" in IN_PROGRESS|SCHEDULED|COMPLETED|CANCELED) ;; *) failed=1; break ;; esac',
		"\tfi",
		`\tif ! finished "$job"; then left=$job; failed=${leftRunningExitCode}; break; fi`,
		"\tcounts=$(call iot describe-job --job-id \"$job\" --query 'job.[status, jobProcessDetails.numberOfFailedThings, jobProcessDetails.numberOfRejectedThings, jobProcessDetails.numberOfTimedOutThings, jobProcessDetails.numberOfCanceledThings, jobProcessDetails.numberOfRemovedThings]' --output text) || counts=UNKNOWN",
		"\tunsuccessful=$(echo \"$counts\" | awk '{ n = 0; for (i = 2; i <= NF; i++) if ($i != \"None\") n += $i; print n }')",
		...(config.cleanUp ? ['\tremove "$job" || left=$job'] : []),
		'\tcase "$counts" in',
		'\tCOMPLETED*) [ "$unsuccessful" -eq 0 ] || { log "job $job: $unsuccessful executions did not succeed"; failed=1; break; } ;;',
		'\t*) log "job $job ended ${counts%%[[:space:]]*}"; failed=1; break ;;',
		"\tesac",
		...(config.rounds > 1 && config.defaultDelaySeconds ? [`\t[ "$job" = ${quote(jobs[jobs.length - 1])} ] || sleep ${config.defaultDelaySeconds}`] : []),
		"done",
		'if [ -n "$left" ]; then',
		'\tlog "job $left is left running, and so are the stream and the alarms it needs: follow it with xs-ota fleet monitor, stop it with ./deploy.sh --abort"',
		`\texit ${leftRunningExitCode}`,
		"fi",
	);
	if (config.cleanUp) lines.push("", "# 5. Cleanup (cleanUpCfg): the stream and the alarms.", "cleanup || exit 1");
	lines.push('exit "$failed"', "");
	return lines.join("\n");
}

/** The shell functions that bring a stack to a template and wait for the outcome. */
function stackFunctions(): string[] {
	return [
		"# stack_status STACK: the stack's status, DELETE_COMPLETE when there is none (as AWS says of a deleted one).",
		"stack_status() {",
		"\tcall --expect 'does not exist' cloudformation describe-stacks --stack-name \"$1\" --query 'Stacks[0].StackStatus' --output text && return 0",
		"\tgrep -q 'does not exist' \"$ERR\" && echo DELETE_COMPLETE",
		"}",
		"",
		"# A stack has settled once no operation is under way (REVIEW_IN_PROGRESS waits for a change set, not for AWS).",
		'stack_settled() { case "$1" in REVIEW_IN_PROGRESS) return 0 ;; *_IN_PROGRESS) return 1 ;; esac; return 0; }',
		"",
		"# stack_failed STACK STATUS: says the stack is STATUS, and why: its newest failed resource (not one cancelled with it).",
		"stack_failed() {",
		"\tquery=\"StackEvents[?ends_with(ResourceStatus, '_FAILED') && ResourceType != 'AWS::CloudFormation::Stack'\"",
		"\tquery=\"$query && !contains(ResourceStatusReason || '', 'cancelled')] | [0].[LogicalResourceId, ResourceStatusReason]\"",
		"\twhy=$(call cloudformation describe-stack-events --stack-name \"$1\" --query \"$query\" --output text | awk -F '\\t' 'NF == 2 { print $1 \": \" $2 }')",
		'\tlog "stack $1 is $2${why:+: $why}"',
		"}",
		"",
		"# stack STACK TEMPLATE: brings the stack to the template: creates it, or updates it (\"No updates are to be",
		"# performed\" means it has it), and waits for the outcome. Anything but CREATE_COMPLETE or UPDATE_COMPLETE is an",
		"# error: UPDATE_ROLLBACK_COMPLETE means the previous template is back, not this one.",
		"stack() {",
		'\tstate=$(settle "stack $1" "$STACK_WAIT" stack_settled stack_status "$1") || return 1',
		'\tif [ "$state" = ROLLBACK_COMPLETE ]; then',
		'\t\tif [ "$RECREATE" = no ]; then',
		'\t\t\tstack_failed "$1" "$state"',
		'\t\t\tlog "stack $1 is left from a failed creation and can only be deleted: ./deploy.sh --recreate-rolled-back deletes it and creates it again"',
		"\t\t\treturn 1",
		"\t\tfi",
		'\t\tlog "stack $1 is ROLLBACK_COMPLETE: deleting it, to create it again"',
		'\t\tcall cloudformation delete-stack --stack-name "$1" >/dev/null || return 1',
		'\t\tstate=$(settle "stack $1" "$STACK_WAIT" stack_settled stack_status "$1") || return 1',
		"\tfi",
		'\tcase "$state" in',
		"\tDELETE_COMPLETE)",
		'\t\tlog "creating stack $1"',
		'\t\tcall cloudformation create-stack --stack-name "$1" --template-body "file://$2" --capabilities CAPABILITY_IAM >/dev/null || return 1 ;;',
		"\tCREATE_COMPLETE|UPDATE_COMPLETE|UPDATE_ROLLBACK_COMPLETE|IMPORT_COMPLETE|IMPORT_ROLLBACK_COMPLETE)",
		"\t\tnone='No updates are to be performed'",
		'\t\tif ! call --expect "$none" cloudformation update-stack --stack-name "$1" --template-body "file://$2" --capabilities CAPABILITY_IAM >/dev/null; then',
		'\t\t\tgrep -q "$none" "$ERR" && return 0',
		"\t\t\treturn 1",
		"\t\tfi",
		'\t\tlog "updating stack $1" ;;',
		'\t*) stack_failed "$1" "$state"; return 1 ;;',
		"\tesac",
		'\tstate=$(settle "stack $1" "$STACK_WAIT" stack_settled stack_status "$1") || return 1',
		'\tcase "$state" in CREATE_COMPLETE|UPDATE_COMPLETE) return 0 ;; esac',
		'\tstack_failed "$1" "$state"',
		"\treturn 1",
		"}",
	];
}
