-- The lag of one consumer group in events, for KEDA's postgresql trigger.
-- examples/autoscaling/keda-scaledobject.yaml carries the statement below, word for word (a test compares
-- them and runs it against a real database). To use it for another group, replace the schema (sluice), the
-- stream ('orders') and the group ('email-notifications'); the group is the ConsumerGroup's metadata.name.
-- Same definition as consumer_groups().describe(stream, group).lag_events: per partition the head minus the
-- committed offset (never negative), summed; 0 for a group that never had a member. O(partitions).
SELECT coalesce(sum(greatest(sp.next_offset - gp.committed_offset, 0)), 0)::bigint AS lag_events
  FROM sluice.consumer_groups g
  JOIN sluice.streams s ON s.stream_id = g.stream_id
  JOIN sluice.consumer_group_partitions gp ON gp.group_key = g.group_key
  JOIN sluice.stream_partitions sp ON sp.stream_id = g.stream_id AND sp.partition = gp.partition
 WHERE s.name = 'orders' AND g.name = 'email-notifications'
