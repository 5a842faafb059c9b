/** Encrypted key envelopes of the software keystore: inserted once, never overwritten. */
import type { KeyBlobRepository } from '../keys/ports.js';
import { rethrowAs, type Db } from './client.js';

/** {@link KeyBlobRepository} over Prisma. */
export function keyBlobRepository(db: Db): KeyBlobRepository {
  return {
    async insert(blob) {
      try {
        await db.keyBlob.create({ data: blob });
      } catch (err) {
        rethrowAs(err, { conflict: `key "${blob.id}" already exists; keys are never overwritten` });
      }
    },
    find: (id) => db.keyBlob.findUnique({ where: { id } }),
    async setState(id, state) {
      try {
        await db.keyBlob.update({ where: { id }, data: { state } });
      } catch (err) {
        rethrowAs(err, { notFound: `no key "${id}"` });
      }
    },
    async destroy(id) {
      try {
        await db.keyBlob.update({ where: { id }, data: { envelope: '', state: 'destroyed' } });
      } catch (err) {
        rethrowAs(err, { notFound: `no key "${id}"` });
      }
    },
  };
}
