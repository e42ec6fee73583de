import { proxyActivities } from '@temporalio/workflow';

/** The benchmark floor: a workflow whose one activity does nothing. */
const { touch } = proxyActivities<{ touch(id: string): Promise<void> }>({
  startToCloseTimeout: '10 seconds',
});

export async function floorWorkflow(id: string): Promise<void> {
  await touch(id);
}
