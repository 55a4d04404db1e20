import { newVersion } from '../interactions/common';
import type { InteractionContext } from '../interactions/types';
import { inTransaction } from '../interactions/unitOfWork';
import { readCurrent } from '../store/resources';
import { INTERNAL_ACCESS } from '../store/session';
import { SERVER_DEVICE_ID, serverDevice } from './notification';

/**
 * This server's Device, the sender of the patient's notifications: created at start-up
 * when absent, as internal work (a directory resource, outside every record).
 */
export async function ensureServerDevice(ctx: InteractionContext): Promise<void> {
  const create = () =>
    inTransaction(ctx, INTERNAL_ACCESS, async (session) => {
      if (await readCurrent(session, 'Device', SERVER_DEVICE_ID, { withBody: false })) return;
      await session.write([newVersion(ctx, serverDevice(), { id: SERVER_DEVICE_ID, versionId: 1, lastUpdated: new Date().toISOString(), method: 'PUT' })]);
    });
  try {
    await create();
  } catch (e) {
    // another process sharing the database created it at the same moment: one attempt more reads it
    await create().catch(() => {
      throw e;
    });
  }
}
