import type { Handler } from '../types';
import { archiveZip } from './archive-zip';
import { calibrationPublish, type PublishTarget } from './calibration-publish';
import { checksumSha256 } from './checksum-sha256';

/** The built-in handlers by task type. Adding one is one file and one line here. */
export function builtInHandlers(options: { calibrationStore?: PublishTarget } = {}): Record<string, Handler> {
  return {
    'archive.zip': archiveZip,
    'checksum.sha256': checksumSha256,
    'calibration.publish': calibrationPublish(options.calibrationStore ?? {}),
  };
}
