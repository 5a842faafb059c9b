/** Where an instance's trellis.json lives; apart from instance-config.ts so that `serve`'s primary can name it without loading the config schema (zod). */
import path from 'node:path';

export const configFile = (dataDir: string): string => path.join(dataDir, 'trellis.json');
