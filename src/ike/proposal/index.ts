/** Proposals: strongSwan-syntax strings, selection, printing, wire conversion. */
export type { Proposal, ProposalProtocol, ReceivedProposal, SelectedProposal, Transform } from './types.js';
export { sameTransform, transformOfType, transformsOfType } from './types.js';
export { allKeywords, isAeadEncryption, keywordForTransform, prfForIntegrity, takesKeyLength, transformForKeyword } from './keywords.js';
export { DEFAULT_PROPOSAL_STRINGS } from './defaults.js';
export type { ProposalList, ProposalListResult, ProposalResult } from './parse.js';
export { defaultProposals, parseProposal, parseProposalList } from './parse.js';
export {
  describeProposal,
  formatAsListSas,
  formatProposal,
  formatProposalList,
  listProposals,
  noAcceptableProposal,
  strongswanAlgorithmName,
} from './format.js';
export { fromProposalSubstructure, fromProposalSubstructures, toProposalSubstructure, toProposalSubstructures } from './substructure.js';
export type { KeDecision, ResponseCheck, SelectionOptions } from './select.js';
export { checkKeGroup, checkSelectedProposal, initialKeGroup, keGroupOf, offersKeGroup, promoteKeGroup, selectProposal, withoutKe } from './select.js';
