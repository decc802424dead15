export { type EmbeddedBroker, startEmbeddedBroker } from './broker';
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
