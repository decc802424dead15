export { type AsyncApiDocument, asyncApiDocument, mergeAsyncApi, serviceAsyncApi } from './asyncapi';
export { type EmbeddedBroker, startEmbeddedBroker } from './broker';
export {
  defineEvents,
  type EventCatalogue,
  type EventData,
  type EventSpec,
  type EventSpecs,
  eventTable,
  UndeclaredEvent,
} from './catalogue';
export { type CloudEvent, cloudEventSchema, createEvent, topicFor } from './cloudevent';
export { OUTBOX_TABLE, Outbox, outboxMigration } from './outbox';
export {
  knexOutboxSource,
  OutboxPublisher,
  type OutboxRow,
  type OutboxSource,
  type PublisherOptions,
} from './publisher';
export { eventsHealth, type ServiceEvents, startServiceEvents } from './start-events';
export { type SubscriberOptions, type Subscription, subscribeEvents } from './subscriber';
