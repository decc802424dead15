import { defineEvents } from '@qlab/events';
import { z } from 'zod';

const when = z.iso.datetime().describe('ISO 8601, UTC');
const archive = {
  id: z.number().int(),
  hashID: z.string(),
  notes: z.string(),
  filename: z.string().describe('The uploaded file name, cleaned (metadata, not a path)'),
  size: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  created_at: when,
};
const calibration = z.object(archive).strict();
const result = z
  .object({
    ...archive,
    name: z.string().nullable(),
    run_id: z.string().nullable().describe("QIBO DB's runID, when given"),
  })
  .strict();

/** Every event calibration-store publishes, on `qlab/calibration-store/<type>`. */
export const calibrationEvents = defineEvents('calibration-store', {
  'calibration.uploaded': {
    summary: 'A calibration archive was stored (in the transaction that wrote its row).',
    subject: 'calibrations/{id}',
    data: calibration,
  },
  'calibration.deleted': {
    summary: 'A calibration archive was deleted.',
    subject: 'calibrations/{id}',
    data: calibration,
  },
  'result.uploaded': {
    summary: 'A result archive was stored.',
    subject: 'results/{id}',
    data: result,
  },
  'result.deleted': {
    summary: 'A result archive was deleted.',
    subject: 'results/{id}',
    data: result,
  },
  'bestrun.set': {
    summary: "A run was set as a calibration's best (QIBO DB's best runs).",
    subject: 'bestruns/{id}',
    data: z
      .object({ id: z.number().int(), calibration_hash_id: z.string(), run_id: z.string(), created_at: when })
      .strict(),
  },
});
export type CalibrationEvents = typeof calibrationEvents.events;
