import { z } from 'zod';
import type { Handler } from '../types';
import { archiveZip, archiveZipTask } from './archive-zip';
import { calibrationPublish, calibrationPublishTask, type PublishTarget } from './calibration-publish';
import { checksumSha256, checksumSha256Task } from './checksum-sha256';
import type { TaskSpec } from './task-spec';

/**
 * The built-in tasks by type: each handler's file declares its spec beside it. Adding one is one
 * file and a line in each of these two records.
 */
export const builtInTasks: Record<string, TaskSpec> = {
  'archive.zip': archiveZipTask,
  'checksum.sha256': checksumSha256Task,
  'calibration.publish': calibrationPublishTask,
};

/** The built-in handlers by task type. */
export function builtInHandlers(options: { calibrationStore?: PublishTarget } = {}): Record<string, Handler> {
  return {
    'archive.zip': archiveZip,
    'checksum.sha256': checksumSha256,
    'calibration.publish': calibrationPublish(options.calibrationStore ?? {}),
  };
}

/** GET /jobs/task-types: every built-in task with its params as JSON Schema (draft 2020-12). */
export function taskTypeCatalogue() {
  return Object.entries(builtInTasks).map(([task_type, spec]) => ({
    task_type,
    description: spec.description,
    inputs: spec.inputs,
    params: z.toJSONSchema(spec.params, { io: 'input' }),
  }));
}
