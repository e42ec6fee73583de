export { serviceOutagePlaybook } from './service-outage.ts';
export { highErrorRatePlaybook } from './high-error-rate.ts';
export { performanceDegradationPlaybook } from './performance-degradation.ts';
export { initialInvestigation } from './investigation.ts';
