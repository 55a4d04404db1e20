import type { Knex } from 'knex';
import * as core from './001_core';
import * as searchStatistics from './002_search_statistics';
import * as binaryChunks from './003_binary_chunks';
import * as pageTokenSecret from './004_page_token_secret';
import * as conformanceVersion from './005_conformance_version';
import * as subscriptionOutbox from './006_subscription_outbox';
import * as deliveryLookup from './007_delivery_lookup';
import * as integrity from './008_integrity';
import * as messaging from './009_messaging';
import * as recordClosure from './010_record_closure';
import * as resourceLocator from './011_resource_locator';
import * as bulkExport from './012_bulk_export';
import * as bulkLoad from './013_bulk_load';
import * as groupExport from './014_group_export';
import * as redundantIndexes from './015_redundant_indexes';
import * as contentFiles from './016_content_files';
import * as documentRelationship from './017_document_relationship';
import * as historyByRecord from './018_history_by_record';

interface Migration {
  name: string;
  module: { up(knex: Knex): Promise<void>; down(knex: Knex): Promise<void> };
}

/** Migrations are compiled with the code (no file globbing), so ts-jest, tsc output and both databases agree. */
const migrations: Migration[] = [
  { name: '001_core', module: core },
  { name: '002_search_statistics', module: searchStatistics },
  { name: '003_binary_chunks', module: binaryChunks },
  { name: '004_page_token_secret', module: pageTokenSecret },
  { name: '005_conformance_version', module: conformanceVersion },
  { name: '006_subscription_outbox', module: subscriptionOutbox },
  { name: '007_delivery_lookup', module: deliveryLookup },
  { name: '008_integrity', module: integrity },
  { name: '009_messaging', module: messaging },
  { name: '010_record_closure', module: recordClosure },
  { name: '011_resource_locator', module: resourceLocator },
  { name: '012_bulk_export', module: bulkExport },
  { name: '013_bulk_load', module: bulkLoad },
  { name: '014_group_export', module: groupExport },
  { name: '015_redundant_indexes', module: redundantIndexes },
  { name: '016_content_files', module: contentFiles },
  { name: '017_document_relationship', module: documentRelationship },
  { name: '018_history_by_record', module: historyByRecord },
];

export const migrationSource: Knex.MigrationSource<Migration> = {
  getMigrations: async () => migrations,
  getMigrationName: (m) => m.name,
  getMigration: async (m) => m.module,
};
