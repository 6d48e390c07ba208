// SPDX-License-Identifier: MIT
pragma solidity ^0.8.37;

/// @notice The part of ERC-20 the registry uses (collateral and bonds).
interface IERC20Minimal {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// @title WorkProof UptimeRegistry
/// @notice Proof-of-uptime on chain (docs/uptime.md section 12, contracts/README.md):
///         providers register an identity key and post collateral; leases are
///         registered with both parties' keys and the roll-up sizes; key rotations
///         are anchored by their record hashes, a forced rotation by the governance
///         address also revokes the outgoing key from a stated sequence on; providers
///         post their daily claims (the 194-byte encoding, linked by prevClaimHash
///         and checked here where it is cheap), each opening a dispute window; a
///         consumer or a fisherman disputes a claim with evidence and a bond; the
///         arbiter rules: upheld (collateral slashed, the consumer refunded, the
///         disputer rewarded and its bond returned) or dismissed (the bond goes to
///         the provider). An arbiter that does not rule in time lets anyone expire
///         the dispute, which returns the bond and slashes nothing.
/// @dev Ed25519 has no EVM precompile: signatures (beats, claims, answers) are checked
///      by the arbiter with the core's verifiers, off chain, from the evidence bytes
///      this contract emits; the chain holds the hashes that bind them. What is cheap
///      is checked here: the claim's layout, its hash (SHA-256 precompile), its index,
///      its sequence range for the lease's sizes, its link to the previous claim, and
///      that the key it declares is one of the lease's and not revoked for its range.
contract UptimeRegistry {
    // ---------------------------------------------------------------- types

    struct Provider {
        address owner;          // the address that registered the identity key
        uint32 openDisputes;    // collateral cannot be withdrawn while any is open
        uint64 lastClaimAt;     // ... nor before the last claim's window has closed
        uint256 collateral;
    }

    struct Lease {
        bytes32 provider;       // identity key of the provider
        address consumer;       // refunds go here; it anchors the consumer's rotations
        uint8 epochBeats;       // E
        uint8 claimEpochs;      // K
        uint32 nextClaim;       // index the next posted claim must have
        uint32[2] rotations;    // anchored rotation records per party (provider, consumer)
        bytes32 lastClaimHash;  // claimHash of claim nextClaim - 1 (zero before claim 0)
    }

    struct Claim {
        bytes32 claimHash;
        bytes32 root;
        uint64 firstSequence;
        uint32 beatCount;
        uint64 postedAt;
        uint8 state;            // CLAIM_*
    }

    /// @dev three slots: the lease, then disputer, time, claim, kind and state packed,
    ///      then the evidence hash (the bond is the immutable disputeBond)
    struct Dispute {
        bytes32 leaseId;
        address disputer;
        uint32 openedAt;        // block timestamp (uint32 holds seconds until 2106)
        uint32 claimIndex;
        uint8 kind;
        uint8 state;            // DISPUTE_*
        bytes32 evidenceHash;   // keccak256 of the evidence bytes (emitted in DisputeOpened)
    }

    // ------------------------------------------------------------ constants

    uint8 public constant PARTY_PROVIDER = 1;
    uint8 public constant PARTY_CONSUMER = 2;

    uint8 public constant CLAIM_POSTED = 1;
    uint8 public constant CLAIM_DISPUTED = 2;  // at least one dispute opened
    uint8 public constant CLAIM_SLASHED = 3;   // at least one dispute upheld

    uint8 public constant DISPUTE_OPEN = 1;
    uint8 public constant DISPUTE_UPHELD = 2;
    uint8 public constant DISPUTE_DISMISSED = 3;
    uint8 public constant DISPUTE_EXPIRED = 4;

    /// @notice Evidence kinds (docs/uptime.md section 12; policies/disputes.lua).
    uint8 public constant KIND_INVALID_BEAT = 1;       // a disclosure proof of an invalid beat in the claim
    uint8 public constant KIND_EQUIVOCATION = 2;       // two beats, one sequence, one provider key
    uint8 public constant KIND_CHALLENGE_FAILED = 3;   // the provider's own signed, wrong or late answer
    uint8 public constant KIND_CLAIM_MISMATCH = 4;     // the claim contradicts the dual-signed chain
    uint8 public constant KIND_OVERCOMMITTED = 5;      // the provider's own signed capacity attestation
    uint8 public constant MAX_KIND = 5;

    uint256 public constant CLAIM_LENGTH = 194;
    uint256 public constant MAX_EVIDENCE_LENGTH = 65536;

    // ---------------------------------------------------------------- state

    IERC20Minimal public immutable token;
    address public immutable governance;
    address public immutable arbiter;
    uint64 public immutable disputeWindow;   // seconds after a claim is posted
    uint64 public immutable ruleWindow;      // seconds the arbiter has to rule on a dispute
    uint256 public immutable disputeBond;    // token units a disputer stakes

    mapping(bytes32 => Provider) private _providers;
    mapping(bytes32 => Lease) private _leases;
    mapping(bytes32 => mapping(uint256 => Claim)) private _claims;
    mapping(uint256 => Dispute) private _disputes;
    /// @notice keys[leaseId][party][key]: 0 = not a key of the lease; else 1 + the
    ///         sequence from which it is revoked (type(uint64).max + 1 = never).
    mapping(bytes32 => mapping(uint8 => mapping(bytes32 => uint256))) private _keys;
    mapping(bytes32 => mapping(uint8 => mapping(uint256 => bytes32))) private _rotationHashes;
    mapping(bytes32 => mapping(uint8 => mapping(uint256 => bytes32))) private _rotationKeys;
    uint256 public disputeCount;

    uint256 private constant NEVER = uint256(type(uint64).max) + 1;

    // --------------------------------------------------------------- events

    event ProviderRegistered(bytes32 indexed provider, address indexed owner, uint256 collateral);
    event CollateralChanged(bytes32 indexed provider, uint256 collateral);
    event LeaseRegistered(bytes32 indexed leaseId, bytes32 indexed provider, bytes32 providerKey,
        bytes32 consumerKey, address consumer, uint8 epochBeats, uint8 claimEpochs);
    event RotationAnchored(bytes32 indexed leaseId, uint8 party, uint32 index, bytes32 newKey,
        uint64 effectiveSequence, bytes32 recordHash, bool forced);
    event KeyRevoked(bytes32 indexed leaseId, uint8 party, bytes32 key, uint64 fromSequence);
    event ClaimPosted(bytes32 indexed leaseId, uint32 indexed index, bytes32 claimHash, bytes32 signer, bytes claim);
    event DisputeOpened(uint256 indexed id, bytes32 indexed leaseId, uint32 claimIndex, uint8 kind,
        address disputer, bytes evidence);
    event DisputeResolved(uint256 indexed id, uint8 state, uint256 slashed, uint256 refunded, bytes32 reportHash);

    // --------------------------------------------------------------- errors

    error NotAllowed();
    error BadArgument(string what);
    error AlreadyRegistered();
    error UnknownProvider();
    error UnknownLease();
    error BadClaim(string why);
    error KeyNotAccepted(bytes32 key);
    error ClaimNotPosted();
    error WindowClosed();
    error NotOpen();
    error TooEarly();
    error CollateralLocked();
    error InsufficientCollateral();
    error TransferFailed();

    constructor(address token_, address governance_, address arbiter_, uint64 disputeWindow_,
        uint64 ruleWindow_, uint256 disputeBond_) {
        if (token_.code.length == 0) revert BadArgument("token");
        if (governance_ == address(0)) revert BadArgument("governance");
        if (arbiter_ == address(0)) revert BadArgument("arbiter");
        if (disputeWindow_ == 0 || ruleWindow_ == 0) revert BadArgument("window");
        token = IERC20Minimal(token_);
        governance = governance_;
        arbiter = arbiter_;
        disputeWindow = disputeWindow_;
        ruleWindow = ruleWindow_;
        disputeBond = disputeBond_;
    }

    // ------------------------------------------------------------ providers

    /// @notice Register `identityKey` (Ed25519, 32 bytes) owned by msg.sender, posting
    ///         `collateral` token units (approve the registry first).
    function registerProvider(bytes32 identityKey, uint256 collateral) external {
        if (identityKey == bytes32(0)) revert BadArgument("identityKey");
        Provider storage p = _providers[identityKey];
        if (p.owner != address(0)) revert AlreadyRegistered();
        p.owner = msg.sender;
        _pull(msg.sender, collateral);
        p.collateral = collateral;
        emit ProviderRegistered(identityKey, msg.sender, collateral);
    }

    function addCollateral(bytes32 provider, uint256 amount) external {
        Provider storage p = _owned(provider);
        _pull(msg.sender, amount);
        p.collateral += amount;
        emit CollateralChanged(provider, p.collateral);
    }

    /// @notice Withdraw collateral: only with no dispute open and once the last claim's
    ///         dispute window (and the arbiter's time to rule) has passed.
    function withdrawCollateral(bytes32 provider, uint256 amount, address to) external {
        Provider storage p = _owned(provider);
        if (p.openDisputes != 0 || block.timestamp < uint256(p.lastClaimAt) + disputeWindow) {
            revert CollateralLocked();
        }
        if (amount > p.collateral) revert InsufficientCollateral();
        p.collateral -= amount;
        _push(to, amount);
        emit CollateralChanged(provider, p.collateral);
    }

    function getProvider(bytes32 provider) external view returns (Provider memory) {
        return _providers[provider];
    }

    // --------------------------------------------------------------- leases

    /// @notice Register a lease of `provider` (msg.sender must own it). The lease id is
    ///         computed here, as the agents compute it: SHA-256("workproof-lease-v1" ||
    ///         providerKey || consumerKey || startNs (8 bytes BE) || nonce (16 bytes)).
    function registerLease(bytes32 provider, bytes32 providerKey, bytes32 consumerKey, uint64 startNs,
        bytes16 nonce, address consumer, uint8 epochBeats, uint8 claimEpochs) external returns (bytes32 leaseId) {
        _owned(provider);
        if (epochBeats == 0 || epochBeats > 60 || claimEpochs == 0 || claimEpochs > 24) revert BadArgument("sizes");
        if (consumer == address(0)) revert BadArgument("consumer");
        if (providerKey == bytes32(0) || consumerKey == bytes32(0)) revert BadArgument("key");
        leaseId = sha256(abi.encodePacked("workproof-lease-v1", providerKey, consumerKey, startNs, nonce));
        Lease storage l = _leases[leaseId];
        if (l.provider != bytes32(0)) revert AlreadyRegistered();
        l.provider = provider;
        l.consumer = consumer;
        l.epochBeats = epochBeats;
        l.claimEpochs = claimEpochs;
        _keys[leaseId][PARTY_PROVIDER][providerKey] = NEVER;
        _keys[leaseId][PARTY_CONSUMER][consumerKey] = NEVER;
        _rotationKeys[leaseId][PARTY_PROVIDER][0] = providerKey;
        _rotationKeys[leaseId][PARTY_CONSUMER][0] = consumerKey;
        emit LeaseRegistered(leaseId, provider, providerKey, consumerKey, consumer, epochBeats, claimEpochs);
    }

    function getLease(bytes32 leaseId) external view returns (Lease memory) {
        return _leases[leaseId];
    }

    // ------------------------------------------------------------ rotations

    /// @notice Anchor rotation record `index` of `party` (1 provider, 2 consumer): its
    ///         recordHash (SHA-256 of the 127 canonical bytes), the new key and the
    ///         sequence it takes effect at. The provider's owner anchors the provider's,
    ///         the lease's consumer address the consumer's; records in order.
    function anchorRotation(bytes32 leaseId, uint8 party, uint32 index, bytes32 newKey, uint64 effectiveSequence,
        bytes32 recordHash) external {
        Lease storage l = _lease(leaseId);
        address who = party == PARTY_PROVIDER ? _providers[l.provider].owner
            : party == PARTY_CONSUMER ? l.consumer : address(0);
        if (who == address(0)) revert BadArgument("party");
        if (msg.sender != who) revert NotAllowed();
        if (index != l.rotations[party - 1]) revert BadArgument("index");
        _rotate(leaseId, l, party, index, newKey, effectiveSequence, recordHash, false);
    }

    /// @notice Governance forces rotation `index` of `party` (the outgoing key is
    ///         compromised): it replaces any record anchored at that index or later,
    ///         and the key it replaces is revoked from `effectiveSequence` on: claims
    ///         declaring it for a range reaching that sequence are refused.
    function forceRotation(bytes32 leaseId, uint8 party, uint32 index, bytes32 newKey, uint64 effectiveSequence,
        bytes32 recordHash) external {
        if (msg.sender != governance) revert NotAllowed();
        Lease storage l = _lease(leaseId);
        if (party != PARTY_PROVIDER && party != PARTY_CONSUMER) revert BadArgument("party");
        if (index > l.rotations[party - 1]) revert BadArgument("index");
        // the outgoing key, and every key a superseded record (signed with it) introduced
        for (uint256 i = index; i <= l.rotations[party - 1]; i++) {
            bytes32 key = _rotationKeys[leaseId][party][i];
            if (_keys[leaseId][party][key] > uint256(effectiveSequence) + 1) {
                _keys[leaseId][party][key] = uint256(effectiveSequence) + 1;
                emit KeyRevoked(leaseId, party, key, effectiveSequence);
            }
        }
        _rotate(leaseId, l, party, index, newKey, effectiveSequence, recordHash, true);
    }

    function _rotate(bytes32 leaseId, Lease storage l, uint8 party, uint32 index, bytes32 newKey,
        uint64 effectiveSequence, bytes32 recordHash, bool forced) private {
        if (newKey == bytes32(0) || _keys[leaseId][party][newKey] != 0) revert BadArgument("newKey");
        if (recordHash == bytes32(0)) revert BadArgument("recordHash");
        _keys[leaseId][party][newKey] = NEVER;
        _rotationHashes[leaseId][party][index] = recordHash;
        _rotationKeys[leaseId][party][index + 1] = newKey;
        l.rotations[party - 1] = index + 1;
        emit RotationAnchored(leaseId, party, index, newKey, effectiveSequence, recordHash, forced);
    }

    function rotationHash(bytes32 leaseId, uint8 party, uint32 index) external view returns (bytes32) {
        return _rotationHashes[leaseId][party][index];
    }

    /// @notice 0 when `key` is not a key of the lease's party; else 1 + the first
    ///         sequence it is revoked for (2^64 when never revoked).
    function keyStatus(bytes32 leaseId, uint8 party, bytes32 key) external view returns (uint256) {
        return _keys[leaseId][party][key];
    }

    // --------------------------------------------------------------- claims

    /// @notice Post a claim (the 194-byte encoding, docs/uptime.md section 3) declared
    ///         as signed by provider key `signer`. Checked: the layout, the lease (its
    ///         provider's owner posts), index = the next, first sequence = index x K x E,
    ///         1 <= beat count <= K x E, period start <= end, prevClaimHash = the last
    ///         posted claim's hash, and `signer` a provider key of the lease not revoked
    ///         for any sequence of the claim. The signature itself is the arbiter's to check.
    function postClaim(bytes calldata claim, bytes32 signer) external returns (bytes32 claimHash) {
        (bytes32 leaseId, uint32 index) = _checkClaim(claim, signer);
        claimHash = sha256(abi.encodePacked("WP-UPTIME-CLAIM1", claim[0:130]));
        _claims[leaseId][index] = Claim({
            claimHash: claimHash, root: bytes32(claim[66:98]),
            firstSequence: uint64(bytes8(claim[38:46])), beatCount: uint32(bytes4(claim[46:50])),
            postedAt: uint64(block.timestamp), state: CLAIM_POSTED
        });
        Lease storage l = _leases[leaseId];
        l.nextClaim = index + 1;
        l.lastClaimHash = claimHash;
        _providers[l.provider].lastClaimAt = uint64(block.timestamp);
        emit ClaimPosted(leaseId, index, claimHash, signer, claim);
    }

    function _checkClaim(bytes calldata claim, bytes32 signer) private view returns (bytes32 leaseId, uint32 index) {
        if (claim.length != CLAIM_LENGTH) revert BadClaim("length");
        if (uint8(claim[0]) != 1) revert BadClaim("version");
        if (uint8(claim[1]) > 1) revert BadClaim("flags");
        leaseId = bytes32(claim[2:34]);
        Lease storage l = _lease(leaseId);
        if (msg.sender != _providers[l.provider].owner) revert NotAllowed();
        index = uint32(bytes4(claim[34:38]));
        uint256 first = uint64(bytes8(claim[38:46]));
        uint256 count = uint32(bytes4(claim[46:50]));
        if (index != l.nextClaim) revert BadClaim("index");
        uint256 span = uint256(l.claimEpochs) * l.epochBeats;
        if (first != uint256(index) * span) revert BadClaim("first sequence");
        if (count == 0 || count > span) revert BadClaim("beat count");
        if (uint64(bytes8(claim[50:58])) > uint64(bytes8(claim[58:66]))) revert BadClaim("period");
        if (bytes32(claim[98:130]) != l.lastClaimHash) revert BadClaim("prevClaimHash");
        uint256 ks = _keys[leaseId][PARTY_PROVIDER][signer];
        if (ks == 0 || ks <= first + count) revert KeyNotAccepted(signer); // revoked at or before the last beat
    }

    function getClaim(bytes32 leaseId, uint32 index) external view returns (Claim memory) {
        return _claims[leaseId][index];
    }

    // ------------------------------------------------------------- disputes

    /// @notice Dispute claim `claimIndex` of a lease with `evidence` (docs/uptime.md
    ///         section 12 has each kind's bytes), staking `disputeBond` token units
    ///         (approve first). Anyone may dispute (the consumer, a fisherman), within
    ///         the claim's dispute window. The evidence is emitted, its hash kept.
    function openDispute(bytes32 leaseId, uint32 claimIndex, uint8 kind, bytes calldata evidence)
        external returns (uint256 id) {
        _lease(leaseId);
        Claim storage c = _claims[leaseId][claimIndex];
        if (c.state == 0) revert ClaimNotPosted();
        if (block.timestamp >= uint256(c.postedAt) + disputeWindow) revert WindowClosed();
        if (kind == 0 || kind > MAX_KIND) revert BadArgument("kind");
        if (evidence.length == 0 || evidence.length > MAX_EVIDENCE_LENGTH) revert BadArgument("evidence");
        _pull(msg.sender, disputeBond);
        id = ++disputeCount;
        _disputes[id] = Dispute({
            leaseId: leaseId, disputer: msg.sender, openedAt: uint32(block.timestamp), claimIndex: claimIndex,
            kind: kind, state: DISPUTE_OPEN, evidenceHash: keccak256(evidence)
        });
        if (c.state == CLAIM_POSTED) c.state = CLAIM_DISPUTED;
        _providers[_leases[leaseId].provider].openDisputes += 1;
        emit DisputeOpened(id, leaseId, claimIndex, kind, msg.sender, evidence);
    }

    /// @notice The arbiter's ruling. Upheld: `slash` units of the provider's collateral
    ///         (at most all of it) are taken, `refund` of them (<= slash) go to the lease's
    ///         consumer and the rest, with the bond, to the disputer. Dismissed (`upheld`
    ///         false, slash and refund 0): the bond goes to the provider's owner.
    ///         `reportHash` binds the arbiter's written report (SHA-256 of its JSON).
    function resolve(uint256 id, bool upheld, uint256 slash, uint256 refund, bytes32 reportHash) external {
        if (msg.sender != arbiter) revert NotAllowed();
        Dispute storage d = _open(id);
        if (block.timestamp >= uint256(d.openedAt) + ruleWindow) revert WindowClosed();
        Lease storage l = _leases[d.leaseId];
        Provider storage p = _providers[l.provider];
        p.openDisputes -= 1;
        if (upheld) {
            if (refund > slash || slash > p.collateral) revert InsufficientCollateral();
            p.collateral -= slash;
            d.state = DISPUTE_UPHELD;
            _claims[d.leaseId][d.claimIndex].state = CLAIM_SLASHED;
            _push(l.consumer, refund);
            _push(d.disputer, slash - refund + disputeBond);
            if (slash != 0) emit CollateralChanged(l.provider, p.collateral);
        } else {
            if (slash != 0 || refund != 0) revert BadArgument("dismissed with amounts");
            d.state = DISPUTE_DISMISSED;
            _push(p.owner, disputeBond);
        }
        emit DisputeResolved(id, d.state, slash, refund, reportHash);
    }

    /// @notice A dispute the arbiter did not rule on within ruleWindow: anyone may close
    ///         it; the bond returns to the disputer and nothing is slashed.
    function expire(uint256 id) external {
        Dispute storage d = _open(id);
        if (block.timestamp < uint256(d.openedAt) + ruleWindow) revert TooEarly();
        d.state = DISPUTE_EXPIRED;
        _providers[_leases[d.leaseId].provider].openDisputes -= 1;
        _push(d.disputer, disputeBond);
        emit DisputeResolved(id, DISPUTE_EXPIRED, 0, 0, bytes32(0));
    }

    function getDispute(uint256 id) external view returns (Dispute memory) {
        return _disputes[id];
    }

    // -------------------------------------------------------------- helpers

    function _owned(bytes32 provider) private view returns (Provider storage p) {
        p = _providers[provider];
        if (p.owner == address(0)) revert UnknownProvider();
        if (p.owner != msg.sender) revert NotAllowed();
    }

    function _lease(bytes32 leaseId) private view returns (Lease storage l) {
        l = _leases[leaseId];
        if (l.provider == bytes32(0)) revert UnknownLease();
    }

    function _open(uint256 id) private view returns (Dispute storage d) {
        d = _disputes[id];
        if (d.state != DISPUTE_OPEN) revert NotOpen();
    }

    function _pull(address from, uint256 amount) private {
        if (amount != 0 && !token.transferFrom(from, address(this), amount)) revert TransferFailed();
    }

    function _push(address to, uint256 amount) private {
        if (amount != 0 && !token.transfer(to, amount)) revert TransferFailed();
    }
}
