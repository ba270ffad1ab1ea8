"""distilmd_torch — an independent PyTorch implementation of the PaiNN "student"
model defined in shared/docs/student-model.md.

It is the reference the C/CUDA engine is checked against and the "original
project" speed baseline. Nothing here executes the (broken) ONNX graph: only
the initializers (trained weights) are read, by a small protobuf reader.

Contents
  read_onnx_initializers(path)   -> {name: numpy array}, "model." prefix stripped
  StudentModel(weights, dtype)   torch.nn.Module: (species, positions, mol_index) -> E [M]
  energy_and_forces(model, ...)  -> (E [M], F [N,3]) with F = -dE/dx by autograd
  candidate_pairs, build_edges   the molecular graph, built on the positions' device
  read_extxyz, write_extxyz      small (extended) XYZ reader/writer for tests

Batch layout: atoms of molecule 0 first, then molecule 1, ...; mol_index[a] is
the molecule of atom a (non-decreasing). Molecules never interact.
"""

import math
import re
import struct

import numpy as np

try:
    import torch
    import torch.nn.functional as F_nn
except ImportError:  # the ONNX and XYZ helpers work without torch
    torch = None


# ---------------------------------------------------------------------------
# ONNX initializers: a minimal protobuf reader
#
# Protobuf wire format: each field is key = varint (field_number << 3 | wire_type)
# followed by, per wire type: 0 varint, 1 fixed 8 bytes, 2 varint length + bytes,
# 5 fixed 4 bytes. Messages used:
#   ModelProto.graph = 7 (GraphProto)
#   GraphProto.initializer = 5 (repeated TensorProto)
#   TensorProto: dims = 1 (repeated int64), data_type = 2 (int32),
#                float_data = 4 (repeated float, packed or not), int32_data = 5,
#                int64_data = 7, name = 8 (string), raw_data = 9 (bytes,
#                little-endian), double_data = 10, data_location = 14
# ---------------------------------------------------------------------------

ONNX_DTYPES = {  # TensorProto.DataType -> numpy little-endian dtype
    1: "<f4", 2: "<u1", 3: "<i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8",
    9: "<u1", 10: "<f2", 11: "<f8", 12: "<u4", 13: "<u8",
}


class OnnxFormatError(ValueError):
    pass


def _read_varint(buf, pos, label):
    """Returns (value, new_pos) of the base-128 varint starting at buf[pos]."""
    value = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise OnnxFormatError("%s: truncated varint at byte %d" % (label, pos))
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise OnnxFormatError("%s: varint longer than 10 bytes at byte %d" % (label, pos))


def _fields(buf, label):
    """Yields (field_number, wire_type, value) for each field of a message.
    value is an int for wire types 0/1/5 (raw bits) and a memoryview for 2."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos, label)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos, label)
        elif wire == 1:
            if pos + 8 > end:
                raise OnnxFormatError("%s: truncated fixed64 field %d" % (label, field))
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _read_varint(buf, pos, label)
            if pos + length > end:
                raise OnnxFormatError("%s: field %d claims %d bytes, only %d left"
                                      % (label, field, length, end - pos))
            value = buf[pos:pos + length]
            pos += length
        elif wire == 5:
            if pos + 4 > end:
                raise OnnxFormatError("%s: truncated fixed32 field %d" % (label, field))
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise OnnxFormatError("%s: unsupported wire type %d (field %d) at byte %d"
                                  % (label, wire, field, pos))
        yield field, wire, value


def _signed64(v):
    return v - (1 << 64) if v >= (1 << 63) else v


def _parse_tensor(buf, label):
    """TensorProto -> (name, numpy array)."""
    dims, name, data_type = [], None, None
    raw = None
    floats, doubles, ints32, ints64 = [], [], [], []
    external = False
    for field, wire, value in _fields(buf, label):
        if field == 1:  # dims: int64, packed (wire 2) or one per field (wire 0)
            if wire == 2:
                p = 0
                while p < len(value):
                    d, p = _read_varint(value, p, label)
                    dims.append(_signed64(d))
            else:
                dims.append(_signed64(value))
        elif field == 2:
            data_type = value
        elif field == 4:  # float_data
            if wire == 2:
                floats.extend(np.frombuffer(bytes(value), dtype="<f4").tolist())
            else:
                floats.append(struct.unpack("<f", struct.pack("<I", value))[0])
        elif field == 5 or field == 7:  # int32_data / int64_data (varints)
            target = ints32 if field == 5 else ints64
            if wire == 2:
                p = 0
                while p < len(value):
                    d, p = _read_varint(value, p, label)
                    target.append(_signed64(d))
            else:
                target.append(_signed64(value))
        elif field == 8:
            name = bytes(value).decode("utf-8")
        elif field == 9:
            raw = bytes(value)
        elif field == 10:  # double_data
            if wire == 2:
                doubles.extend(np.frombuffer(bytes(value), dtype="<f8").tolist())
            else:
                doubles.append(struct.unpack("<d", struct.pack("<Q", value))[0])
        elif field == 14 and value == 1:
            external = True
    where = "%s: tensor %r" % (label, name)
    if name is None:
        raise OnnxFormatError("%s: initializer without a name" % label)
    if external:
        raise OnnxFormatError("%s stores its data externally; not supported" % where)
    if data_type not in ONNX_DTYPES:
        raise OnnxFormatError("%s has data_type %s; expected one of %s"
                              % (where, data_type, sorted(ONNX_DTYPES)))
    count = int(np.prod(dims)) if dims else 1
    dtype = np.dtype(ONNX_DTYPES[data_type])
    if raw is not None:
        if len(raw) != count * dtype.itemsize:
            raise OnnxFormatError("%s: raw_data has %d bytes; dims %s of %s need %d"
                                  % (where, len(raw), dims, dtype, count * dtype.itemsize))
        array = np.frombuffer(raw, dtype=dtype).copy()
    else:
        values = {1: floats, 11: doubles, 7: ints64}.get(data_type, ints32)
        if len(values) != count:
            raise OnnxFormatError("%s: %d values in the typed data field; dims %s need %d"
                                  % (where, len(values), dims, count))
        array = np.array(values, dtype=dtype)
    return name, array.reshape(dims)


def read_onnx_initializers(path, strip_prefix="model."):
    """Reads every initializer of an ONNX file: {name: numpy array}. A leading
    `strip_prefix` is removed from each name (the 427k file has it)."""
    with open(path, "rb") as f:
        data = memoryview(f.read())
    tensors = {}
    graphs = 0
    for field, wire, value in _fields(data, path):
        if field != 7 or wire != 2:
            continue
        graphs += 1
        for gfield, gwire, gvalue in _fields(value, path + ": graph"):
            if gfield != 5 or gwire != 2:
                continue
            name, array = _parse_tensor(gvalue, path + ": initializer")
            if strip_prefix and name.startswith(strip_prefix):
                name = name[len(strip_prefix):]
            if name in tensors:
                raise OnnxFormatError("%s: initializer %r appears twice" % (path, name))
            tensors[name] = array
    if graphs != 1:
        raise OnnxFormatError("%s: expected one ModelProto.graph (field 7), found %d"
                              % (path, graphs))
    return tensors


# ---------------------------------------------------------------------------
# The weights: names, shapes, H/L/K inference
# ---------------------------------------------------------------------------

def infer_sizes(w, label="model"):
    """(H, L, K) from the tensor shapes; raises ValueError naming what is wrong."""
    def need(name):
        if name not in w:
            raise ValueError("%s: missing tensor %r" % (label, name))
        return w[name]
    emb = need("embedding.weight")
    if emb.ndim != 2 or emb.shape[0] != 101:
        raise ValueError("%s: embedding.weight has shape %s, expected [101, H]"
                         % (label, list(emb.shape)))
    H = emb.shape[1]
    K = need("rbf.centers").shape[0]
    L = 0
    while "interactions.%d.message.rbf_to_scalar.0.weight" % L in w:
        L += 1
    if L == 0:
        raise ValueError("%s: no interactions.0.* tensors" % label)
    expected = {"rbf.centers": (K,), "rbf.widths": (K,),
                "energy_head.0.weight": (H // 2, H), "energy_head.0.bias": (H // 2,),
                "energy_head.2.weight": (H // 4, H // 2), "energy_head.2.bias": (H // 4,),
                "energy_head.4.weight": (1, H // 4), "energy_head.4.bias": (1,)}
    for l in range(L):
        p = "interactions.%d." % l
        expected.update({
            p + "message.rbf_to_scalar.0.weight": (H, K),
            p + "message.rbf_to_scalar.0.bias": (H,),
            p + "message.rbf_to_scalar.2.weight": (3 * H, H),
            p + "message.rbf_to_scalar.2.bias": (3 * H,),
            p + "update.update_mlp.0.weight": (H, 2 * H),
            p + "update.update_mlp.0.bias": (H,),
            p + "update.update_mlp.2.weight": (3 * H, H),
            p + "update.update_mlp.2.bias": (3 * H,),
        })
        if l < L - 1:
            expected[p + "update.mixing_matrix"] = (3, 3)
    for name, shape in expected.items():
        if tuple(need(name).shape) != shape:
            raise ValueError("%s: tensor %r has shape %s, expected %s"
                             % (label, name, list(w[name].shape), list(shape)))
    return H, L, K


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------

if torch is not None:

    def candidate_pairs(mol_index, n_molecules=None):
        """All ordered pairs (i, j), i != j, of atoms of the same molecule, on
        mol_index's device. mol_index must be non-decreasing (molecules are
        contiguous blocks). Returns (i, j) LongTensors.

        Vectorised: atom a of a molecule with n atoms owns n consecutive
        candidate slots; slot k of atom a pairs it with atom offset[mol] + k."""
        device = mol_index.device
        n_atoms = mol_index.shape[0]
        if n_atoms == 0:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return empty, empty
        if n_molecules is None:
            n_molecules = int(mol_index[-1]) + 1
        counts = torch.bincount(mol_index, minlength=n_molecules)        # [M]
        offsets = torch.cumsum(counts, 0) - counts                       # first atom of each molecule
        per_atom = counts[mol_index]                                     # slots owned by each atom
        slot_start = torch.cumsum(per_atom, 0) - per_atom
        total = int(per_atom.sum())
        i = torch.repeat_interleave(torch.arange(n_atoms, device=device), per_atom)
        k = torch.arange(total, device=device) - slot_start[i]
        j = offsets[mol_index[i]] + k
        keep = i != j
        return i[keep], j[keep]

    def build_edges(positions, cand_i, cand_j, cutoff):
        """Keeps the candidate pairs with |x_i - x_j| <= cutoff (no gradient
        needed: the edge set is piecewise constant in the positions)."""
        with torch.no_grad():
            d = torch.linalg.vector_norm(positions[cand_i] - positions[cand_j], dim=1)
            keep = d <= cutoff
        return cand_i[keep], cand_j[keep]

    def check_mol_index(mol_index):
        """Raises ValueError unless mol_index is non-decreasing and starts at 0."""
        if mol_index.numel() == 0:
            return
        if int(mol_index[0]) != 0 or bool((mol_index[1:] < mol_index[:-1]).any()):
            raise ValueError("mol_index must start at 0 and be non-decreasing "
                             "(atoms of each molecule contiguous)")

    def mol_index_from_counts(counts, device=None):
        """[n_0, n_1, ...] atoms per molecule -> mol_index [sum n]."""
        counts = torch.as_tensor(counts, dtype=torch.long, device=device)
        return torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts)

    def _linear(x, W, b):
        return torch.addmm(b, x, W.t())  # W x + b, row-wise

    class StudentModel(torch.nn.Module):
        """PaiNN student model of shared/docs/student-model.md.

        forward(species [N] long, positions [N,3], mol_index [N] long,
                n_molecules=None, pairs=None) -> energies [M]
        `pairs` may pass precomputed candidate_pairs(mol_index) to skip that
        step; the distance mask is always applied to the current positions."""

        def __init__(self, weights, dtype=torch.float64, label="model"):
            super().__init__()
            H, L, K = infer_sizes(weights, label)
            self.H, self.L, self.K = H, L, K
            self.dtype = dtype
            self.n_parameters = int(sum(np.asarray(a).size for a in weights.values()))
            centers = np.asarray(weights["rbf.centers"], dtype=np.float64)
            self.cutoff = float(centers[K - 1])

            def buf(name, key):
                self.register_buffer(name, torch.as_tensor(np.asarray(weights[key]), dtype=dtype).clone())

            buf("embedding", "embedding.weight")
            buf("centers", "rbf.centers")
            buf("widths", "rbf.widths")
            for l in range(L):
                p = "interactions.%d." % l
                buf("W1_%d" % l, p + "message.rbf_to_scalar.0.weight")
                buf("b1_%d" % l, p + "message.rbf_to_scalar.0.bias")
                buf("W2_%d" % l, p + "message.rbf_to_scalar.2.weight")
                buf("b2_%d" % l, p + "message.rbf_to_scalar.2.bias")
                buf("W3_%d" % l, p + "update.update_mlp.0.weight")
                buf("b3_%d" % l, p + "update.update_mlp.0.bias")
                buf("W4_%d" % l, p + "update.update_mlp.2.weight")
                buf("b4_%d" % l, p + "update.update_mlp.2.bias")
                if l < L - 1:
                    buf("M_%d" % l, p + "update.mixing_matrix")
            for k, name in ((5, "0"), (6, "2"), (7, "4")):
                buf("W%d" % k, "energy_head.%s.weight" % name)
                buf("b%d" % k, "energy_head.%s.bias" % name)

            self.min_norms = None  # a list to record min_h |v_j[:, h]| per layer (diagnostics)

        @classmethod
        def from_onnx(cls, path, dtype=torch.float64):
            return cls(read_onnx_initializers(path), dtype=dtype, label=path)

        def layer(self, name, l):
            return getattr(self, "%s_%d" % (name, l))

        def edge_features(self, positions, i, j):
            """u [E,3] and e [E,K] for edges i -> j (sender i, receiver j):
            r = x_i - x_j, d = |r|, u = r / (d + 1e-8),
            e_k = exp(-(d - c_k)^2 / w_k^2) * 0.5 (cos(pi d / rc) + 1) [d < rc]."""
            r = positions[i] - positions[j]
            d = torch.linalg.vector_norm(r, dim=1)
            u = r / (d + 1e-8).unsqueeze(1)
            rbf = torch.exp(-((d.unsqueeze(1) - self.centers) ** 2) / self.widths ** 2)
            fc = 0.5 * (torch.cos(math.pi * d / self.cutoff) + 1.0)
            fc = torch.where(d < self.cutoff, fc, torch.zeros_like(fc))
            return u, rbf * fc.unsqueeze(1)

        def message(self, l, s, v, u, e, i, j):
            """s_j += sum_{i->j} s_i phi_s;
            v_j += sum_{i->j} (v_i phi_v1 + u (outer) phi_v2), v from before this step."""
            H = self.H
            phi = _linear(F_nn.silu(_linear(e, self.layer("W1", l), self.layer("b1", l))),
                          self.layer("W2", l), self.layer("b2", l))
            phi_s, phi_v1, phi_v2 = phi[:, :H], phi[:, H:2 * H], phi[:, 2 * H:]
            ds = torch.zeros_like(s).index_add(0, j, s[i] * phi_s)
            dv_edge = u.unsqueeze(2) * phi_v2.unsqueeze(1)                # [E,3,H]
            if l > 0:  # v = 0 before the first message
                dv_edge = dv_edge + v[i] * phi_v1.unsqueeze(1)
            dv = torch.zeros_like(v).index_add(0, j, dv_edge)
            return s + ds, v + dv

        def update(self, l, s, v):
            """n = |v| per channel; [a, g1, g2] = W4 silu(W3 [s; n] + b3) + b4;
            s += a; v[c] <- v[c] g1 + (sum_c' M[c][c'] v[c']) g2 (not in the last layer)."""
            H = self.H
            n = torch.linalg.vector_norm(v, dim=1)  # [N,H]; gradient 0 where n == 0
            out = _linear(F_nn.silu(_linear(torch.cat([s, n], dim=1),
                                            self.layer("W3", l), self.layer("b3", l))),
                          self.layer("W4", l), self.layer("b4", l))
            a, g1, g2 = out[:, :H], out[:, H:2 * H], out[:, 2 * H:]
            s = s + a
            if l < self.L - 1:
                mixed = torch.einsum("cd,ndh->nch", self.layer("M", l), v)
                v = v * g1.unsqueeze(1) + mixed * g2.unsqueeze(1)
            return s, v

        def atom_energies(self, s):
            """E_j = W7 silu(W6 silu(W5 s_j + b5) + b6) + b7."""
            h = F_nn.silu(_linear(s, self.W5, self.b5))
            h = F_nn.silu(_linear(h, self.W6, self.b6))
            return _linear(h, self.W7, self.b7)[:, 0]

        def forward(self, species, positions, mol_index, n_molecules=None, pairs=None):
            if n_molecules is None:
                n_molecules = int(mol_index[-1]) + 1 if mol_index.numel() else 0
            if pairs is None:
                pairs = candidate_pairs(mol_index, n_molecules)
            i, j = build_edges(positions, pairs[0], pairs[1], self.cutoff)
            u, e = self.edge_features(positions, i, j)
            s = self.embedding[species]
            v = torch.zeros(s.shape[0], 3, self.H, dtype=s.dtype, device=s.device)
            for l in range(self.L):
                s, v = self.message(l, s, v, u, e, i, j)
                if self.min_norms is not None:
                    self.min_norms.append(torch.linalg.vector_norm(v, dim=1).min(dim=1)[0].detach())
                s, v = self.update(l, s, v)
            energies = torch.zeros(n_molecules, dtype=s.dtype, device=s.device)
            return energies.index_add(0, mol_index, self.atom_energies(s))

    def degenerate_atoms(model, species, positions, mol_index, n_molecules=None, tol=1e-6):
        """Atoms where some channel of |v_j| entering an update is below tol
        (in any layer). There n_j = |v_j| is (nearly) non-differentiable, e.g.
        the C of an ideal CH4, where v_C cancels to exactly 0 in float64: the
        forces of its molecule then depend on rounding (float32 and float64,
        or two summation orders, legitimately disagree). Bool [N]."""
        model.min_norms = []
        try:
            with torch.no_grad():
                model(species, positions.to(model.dtype), mol_index, n_molecules)
            smallest = torch.stack(model.min_norms).min(dim=0)[0]
        finally:
            model.min_norms = None
        return smallest < tol

    def energy_and_forces(model, species, positions, mol_index, n_molecules=None,
                          pairs=None):
        """(energies [M], forces [N,3]) with F = -dE/dx by autograd. Positions
        are cast to the model's dtype; results are detached."""
        x = positions.detach().to(model.dtype).requires_grad_(True)
        energies = model(species, x, mol_index, n_molecules, pairs)
        (grad,) = torch.autograd.grad(energies.sum(), x)
        return energies.detach(), -grad

    def batch_tensors(frames, device="cpu", dtype=torch.float64):
        """List of frames (dicts with 'species' [n] ints, 'positions' [n,3]) ->
        (species, positions, mol_index) tensors on `device`."""
        species = np.concatenate([np.asarray(f["species"], dtype=np.int64) for f in frames])
        positions = np.concatenate([np.asarray(f["positions"], dtype=np.float64) for f in frames])
        counts = [len(f["species"]) for f in frames]
        return (torch.as_tensor(species, device=device),
                torch.as_tensor(positions, dtype=dtype, device=device),
                mol_index_from_counts(counts, device=device))


# ---------------------------------------------------------------------------
# (Extended) XYZ
# ---------------------------------------------------------------------------

ELEMENTS = ("X H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe "
            "Co Ni Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn "
            "Sb Te I Xe").split()
SYMBOL_TO_Z = {sym: z for z, sym in enumerate(ELEMENTS) if z > 0}

_KEY_VALUE = re.compile(r'(\w+)\s*=\s*("[^"]*"|\'[^\']*\'|\S+)')


def element_number(symbol):
    """'C' -> 6; also accepts an atomic number written as text."""
    if symbol.isdigit():
        return int(symbol)
    sym = symbol[:1].upper() + symbol[1:].lower()
    if sym not in SYMBOL_TO_Z:
        raise ValueError("unknown element symbol %r" % symbol)
    return SYMBOL_TO_Z[sym]


def parse_comment(line):
    """Extended XYZ comment line -> {key: value (quotes removed)}."""
    out = {}
    for key, value in _KEY_VALUE.findall(line):
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key] = value
    return out


def _columns(props, label):
    """Properties=name:type:count:... -> [(name, type, count)]."""
    parts = props.split(":")
    if len(parts) % 3:
        raise ValueError("%s: Properties=%s is not name:type:count triples" % (label, props))
    return [(parts[k], parts[k + 1], int(parts[k + 2])) for k in range(0, len(parts), 3)]


def read_extxyz(path):
    """Every frame of an XYZ / extended XYZ file as a list of dicts:
    species [n] (Z), symbols, positions [n,3], forces [n,3] or None,
    energy or None, info {key: value}."""
    with open(path) as f:
        lines = f.read().splitlines()
    frames = []
    pos = 0
    while pos < len(lines):
        if not lines[pos].strip():
            pos += 1
            continue
        label = "%s:%d" % (path, pos + 1)
        try:
            n = int(lines[pos].split()[0])
        except ValueError:
            raise ValueError("%s: expected the number of atoms, got %r" % (label, lines[pos]))
        if pos + 2 + n > len(lines):
            raise ValueError("%s: frame of %d atoms runs past the end of the file" % (label, n))
        info = parse_comment(lines[pos + 1])
        props = info.get("Properties", info.get("properties", "species:S:1:pos:R:3"))
        cols = _columns(props, label)
        rows = [lines[pos + 2 + a].split() for a in range(n)]
        data = {}
        c = 0
        for name, typ, count in cols:
            data[name] = [r[c:c + count] for r in rows]
            c += count
        for a, r in enumerate(rows):
            if len(r) < c:
                raise ValueError("%s:%d: expected %d columns, got %d"
                                 % (path, pos + 3 + a, c, len(r)))
        symbols = [r[0] for r in data["species"]]
        frame = {
            "species": np.array([element_number(s) for s in symbols], dtype=np.int64),
            "symbols": symbols,
            "positions": np.array(data["pos"], dtype=np.float64).reshape(n, 3),
            "forces": (np.array(data["forces"], dtype=np.float64).reshape(n, 3)
                       if "forces" in data else None),
            "energy": float(info["energy"]) if "energy" in info else None,
            "info": info,
        }
        frames.append(frame)
        pos += 2 + n
    return frames


def write_extxyz(path_or_file, frames, append=False):
    """Writes frames (dicts with species or symbols, positions, optional
    forces, energy, name) as extended XYZ; positions/forces with 12 decimals
    (%.12f is exact enough for the 1e-6 comparisons it is used in)."""
    own = isinstance(path_or_file, str)
    f = open(path_or_file, "a" if append else "w") if own else path_or_file
    try:
        for fr in frames:
            symbols = fr.get("symbols") or [ELEMENTS[int(z)] for z in fr["species"]]
            x = np.asarray(fr["positions"], dtype=np.float64)
            forces = fr.get("forces")
            props = "species:S:1:pos:R:3" + (":forces:R:3" if forces is not None else "")
            comment = "Properties=%s" % props
            if fr.get("name"):
                comment += " name=%s" % fr["name"]
            if fr.get("energy") is not None:
                comment += " energy=%.12f" % fr["energy"]
            comment += ' pbc="F F F"'
            f.write("%d\n%s\n" % (len(symbols), comment))
            for a, sym in enumerate(symbols):
                row = "%-2s %20.12f %20.12f %20.12f" % (sym, x[a, 0], x[a, 1], x[a, 2])
                if forces is not None:
                    g = np.asarray(forces, dtype=np.float64)[a]
                    row += " %20.12f %20.12f %20.12f" % (g[0], g[1], g[2])
                f.write(row + "\n")
    finally:
        if own:
            f.close()
