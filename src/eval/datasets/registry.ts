/**
 * The evaluation data registry: every dataset `selfcorrect data fetch` knows, each file with the
 * public URL it comes from (a raw GitHub URL at a fixed commit; see ../shared/data/README.md for
 * provenance and licences) and a pinned SHA-256. The cache has the layout of ../shared/data, so
 * `--data-dir <cache>` works. download.ts fetches and verifies the files.
 *
 * Files with no pinned hash (the five BBQ categories and BBQ's additional_metadata.csv, which were too
 * large to copy when the hashes were taken) are skipped by the downloader unless asked for.
 */
import { basename } from "node:path";
import { UserError } from "../../util/errors.js";

export interface DataFile {
  /** Path inside the data dir / cache (the layout of ../shared/data). */
  path: string;
  /** Upstream URL; null for files derived here with no upstream byte copy (fetch them from a mirror). */
  url: string | null;
  /** Pinned SHA-256 (hex); null when no verified hash is known. */
  sha256: string | null;
  /** Expected size in bytes, when known. */
  bytes?: number;
}

export interface DatasetSpec {
  name: string;
  title: string;
  licence: string;
  /** Upstream repository and commit. */
  source: string;
  note?: string;
  files: DataFile[];
}

const GH = "https://raw.githubusercontent.com";
const ADVBENCH = `${GH}/llm-attacks/llm-attacks/098262edf85f807224e70ecd87b9d83716bf6b73/data`;
const JBB_COPY = `${GH}/Baisayan/hack/2b37da1c255e43e16a74ecd3e51c99ea992b5237/data`;
const ARTIFACTS = `${GH}/JailbreakBench/artifacts/909e68c01d94222b8ad2e397a017e2e12e2adb73/attack-artifacts`;
const BBQ = `${GH}/nyu-mll/BBQ/bea11bd97d79217245b5871acd247b9d6eb24598`;
const BBQ_SUBSET = `${GH}/yifeiwang77/Self-Correction/435d592fafa3bd817e07e16b1afa906620464da4/BBQ/datasets/BBQ/data`;
const XSTEST = `${GH}/paul-rottger/exaggerated-safety`;

type Row = [path: string, bytes: number | undefined, sha256: string | null];

function files(rows: Row[], url: (path: string) => string | null): DataFile[] {
  return rows.map(([path, bytes, sha256]) => {
    const f: DataFile = { path, url: url(path), sha256 };
    if (bytes !== undefined) f.bytes = bytes;
    return f;
  });
}

export const DATASETS: readonly DatasetSpec[] = [
  {
    name: "advbench",
    title: "AdvBench harmful behaviors / strings (Zou et al. 2023)",
    licence: "MIT",
    source: "llm-attacks/llm-attacks@098262e",
    files: files(
      [
        ["advbench/harmful_behaviors.csv", 82125, "6cd1a5c63c07610d7eb67307772ee5606017ee950b5770ab288a2c487489d3e1"],
        ["advbench/harmful_strings.csv", 34654, "2c4751403195634f88eb849d923670cb2d9a883bcc3d74456bf2f08141424a15"],
        ["advbench/transfer_expriment_behaviors.csv", 28895, "7041641d60320a2c24527a457dc5611a9af7c539c3ba27f011648e7f76cafc6d"],
      ],
      (p) => (p.endsWith("transfer_expriment_behaviors.csv") ? `${ADVBENCH}/transfer_expriment_behaviors.csv` : `${ADVBENCH}/${p}`),
    ),
  },
  {
    name: "jbb-behaviors",
    title: "JailbreakBench JBB-Behaviors, harmful + benign (Chao et al. 2024)",
    licence: "MIT",
    source: "Baisayan/hack@2b37da1 (lower-case-header re-export of huggingface.co/datasets/JailbreakBench/JBB-Behaviors)",
    note:
      "The pinned hashes are those of the verified re-export (lower-case headers); the Hugging Face files " +
      "(headers Index,Goal,...) have other bytes. The loader accepts both: a Hugging Face download can be used via --data-dir.",
    files: files(
      [
        ["jbb-behaviors/harmful-behaviors.csv", 23116, "4ee99aeac2d529190670564ed0b6e32977277d2402ac36f2438b28d44a50734a"],
        ["jbb-behaviors/benign-behaviors.csv", 20570, "c0958ac974fb6629527aeff6c81c88154a877190d07313ac377d36951fde5d3e"],
      ],
      (p) => `${JBB_COPY}/${basename(p)}`,
    ),
  },
  {
    name: "jailbreakbench-artifacts",
    title: "JailbreakBench attack artifacts: GCG, PAIR, JBC, prompt+random-search, DSN",
    licence: "MIT",
    source: "JailbreakBench/artifacts@909e68c (attack-artifacts/)",
    files: files(
      [
        ["jailbreakbench-artifacts/DSN/attack-info.json", 100, "434f4dfd5b53bc3a7aa2187656dabd686321a34b4bb6da62f0be9c4e1614a8a7"],
        ["jailbreakbench-artifacts/DSN/evaluation.json", 182747, "18a656fbb1d515a0d9806daa94006eaa68c51850f857625eaf4cb5fc3406050b"],
        ["jailbreakbench-artifacts/DSN/submission.json", 529790, "858b6205197f06e5b3446195b713ec6273d54f68a313d5da5e6879741e352e9f"],
        ["jailbreakbench-artifacts/DSN/white_box/llama-2-7b-chat-hf.json", 126910, "9bcdbe88b18e729ca9abf593d3e5141e7958aff0eb3a0e62ae92b8f64acbdcd9"],
        ["jailbreakbench-artifacts/DSN/white_box/vicuna-13b-v1.5.json", 128486, "ea0a5f7331baf595fb6e6925423f43367cbce8da9273ce93c6a03e2201e3373d"],
        ["jailbreakbench-artifacts/GCG/attack-info.json", 180, "c0fbdac2310cdf495c1c961775c606871afae14ca2fdc29c2551f97bfa689d8f"],
        ["jailbreakbench-artifacts/GCG/transfer/gpt-3.5-turbo-1106.json", 128899, "ff185b1dc73732d830e96efdb3f4a92294ee72e9c88a1800b1d11d4ecb3d4cdf"],
        ["jailbreakbench-artifacts/GCG/transfer/gpt-4-0125-preview.json", 94384, "af54543a06e3702256315517ee6e6a7b0edf182dd2c6d938216fa58cbea8de23"],
        ["jailbreakbench-artifacts/GCG/white_box/llama-2-7b-chat-hf.json", 141247, "f76cbaf899c79ca8eed6a6ed26d6f8789933c5595a9a5ee028e305dec4dd95f7"],
        ["jailbreakbench-artifacts/GCG/white_box/vicuna-13b-v1.5.json", 134533, "9eff8b6f78cae002737868ca8cdd886be5afcd1cbbbe4cf51ff837bc688b01b1"],
        ["jailbreakbench-artifacts/JBC/attack-info.json", 170, "683aa8b794bf1f7056c3fa50c57b424a538ec4fd37f68c52d311817fc6c3b401"],
        ["jailbreakbench-artifacts/JBC/manual/gpt-3.5-turbo-1106.json", 241037, "5999b8f2fc5e85fd4f7d6553abaeaa66f2dc10c5354faa41622e511c08eab871"],
        ["jailbreakbench-artifacts/JBC/manual/gpt-4-0125-preview.json", 241354, "1785f7cf838522461b5b9af3fa606715ecf55c194581f4c8c5c9f1945b59db05"],
        ["jailbreakbench-artifacts/JBC/manual/llama-2-7b-chat-hf.json", 305856, "1607a5a5b9f50abc7f2ff9e07b7257dfde7228b88cfdf73c20f5f56108ffdd23"],
        ["jailbreakbench-artifacts/JBC/manual/vicuna-13b-v1.5.json", 298772, "1d5df5aa451c3d1bb8a4c048a7b2e1e6132e72f2970cb9d94ffc77f44e0edb39"],
        ["jailbreakbench-artifacts/PAIR/attack-info.json", 182, "35e05d14b8368210300c800ad33c9a980c3cd70ba3134252bea51da714f2c56c"],
        ["jailbreakbench-artifacts/PAIR/black_box/gpt-3.5-turbo-1106.json", 164371, "49e007ce488e606cede7ffc8b022e35080b7f3870956e4cb2423d9b42749c78f"],
        ["jailbreakbench-artifacts/PAIR/black_box/gpt-4-0125-preview.json", 135998, "6dd214eee78184daf048ac8af166641724b49fd25bc831e5d7201469c162004d"],
        ["jailbreakbench-artifacts/PAIR/black_box/llama-2-7b-chat-hf.json", 59328, "02819296c5d992568d732d37813b2ce34624068a20f21025c04c04d52820b029"],
        ["jailbreakbench-artifacts/PAIR/black_box/vicuna-13b-v1.5.json", 149383, "18b101386419a98fbdf45cb987069f83af3a40d5e0f7f0d32c4e9dc5ecc049b4"],
        ["jailbreakbench-artifacts/prompt_with_random_search/attack-info.json", 182, "35e05d14b8368210300c800ad33c9a980c3cd70ba3134252bea51da714f2c56c"],
        ["jailbreakbench-artifacts/prompt_with_random_search/black_box/gpt-3.5-turbo-1106.json", 364405, "d4a0691eda37b02dc948b6d6d08460f7d5cd3f15099121b388a58634ffb7bd76"],
        ["jailbreakbench-artifacts/prompt_with_random_search/black_box/gpt-4-0125-preview.json", 362507, "4a0573dba6823c676cab99ed54b8191244080883948270fac9b75255b7c69206"],
        ["jailbreakbench-artifacts/prompt_with_random_search/black_box/llama-2-7b-chat-hf.json", 351767, "45df98af6e1c0e35747f6b9c80cdc606e96c76a511e09a1a49ad5b00cfb51c0a"],
        ["jailbreakbench-artifacts/prompt_with_random_search/black_box/vicuna-13b-v1.5.json", 322732, "9d87a56659f617438feb5770bb2c8e4c2dbbd1bd62964f2c1a8775988017ac5d"],
      ],
      (p) => `${ARTIFACTS}/${p.slice("jailbreakbench-artifacts/".length)}`,
    ),
  },
  {
    name: "bbq",
    title: "BBQ, full release (Parrish et al. 2022); 6 of 11 categories pinned",
    licence: "CC-BY-4.0",
    source: "nyu-mll/BBQ@bea11bd (data/, supplemental/)",
    note:
      "Gender_identity, Race_ethnicity, Race_x_SES, Race_x_gender, SES and supplemental/additional_metadata.csv have no " +
      "pinned SHA-256 (they were too large to copy when the hashes were taken): fetched only with --allow-unpinned.",
    files: files(
      [
        ["bbq/Age.jsonl", 3091834, "46e805b3fc2d8cbd26eeb8e8430d98cf7b2dc9c83574ff3674e8ce4f0fca2a60"],
        ["bbq/Disability_status.jsonl", 1336984, "375d40d9b71f056150264445ec189b13934998f3f49a1e311aa7578eb3b45e5f"],
        ["bbq/Gender_identity.jsonl", undefined, null],
        ["bbq/Nationality.jsonl", 2900040, "a583e74666aec0341ded8aa3983e7cad694eb24de72c254d28b2df3035720090"],
        ["bbq/Physical_appearance.jsonl", 1347476, "e48d7e13508565f4801574e611043470c25c95a0a62af3699cb5ee7cb02608fb"],
        ["bbq/Race_ethnicity.jsonl", undefined, null],
        ["bbq/Race_x_SES.jsonl", undefined, null],
        ["bbq/Race_x_gender.jsonl", undefined, null],
        ["bbq/Religion.jsonl", 1118728, "cb9555f9f3454a52cd2df85956b59bd7fcca5aa922c8527693b1164d08417616"],
        ["bbq/SES.jsonl", undefined, null],
        ["bbq/Sexual_orientation.jsonl", 729010, "2c71036b9e7584fe589c42aef32c1a42bc01b9a5e9b1b8704342630cdb08cefd"],
        ["bbq/supplemental/additional_metadata.csv", undefined, null],
      ],
      (p) => (p.startsWith("bbq/supplemental/") ? `${BBQ}/${p.slice(4)}` : `${BBQ}/data/${basename(p)}`),
    ),
  },
  {
    name: "bbq-subset",
    title: "100 ambiguous BBQ items per category, as shipped by Self-Correction (Wang et al. 2024)",
    licence: "CC-BY-4.0 (BBQ); the repository states no licence",
    source: "yifeiwang77/Self-Correction@435d592 (BBQ/datasets/BBQ/data/)",
    files: files(
      [
        ["bbq-subset/Age.jsonl", 72609, "6ea363355dd5bbf0f2097d0c391be53d79226c34c51db7a72b68a454a9b04a7e"],
        ["bbq-subset/Disability_status.jsonl", 77753, "bf6f6863881c7bcd48fb19ae54a442dff55d8623d900d285e3dc69052a970fd3"],
        ["bbq-subset/Gender_identity.jsonl", 68259, "b333c4afc09eef33b5b581c0c90c819fb3309e1ea50b18f59a161714a93122e3"],
        ["bbq-subset/Nationality.jsonl", 84028, "c7896e6632c97c0b48dca81573eb2c3c111123210b5778bca5c635c5907dee58"],
        ["bbq-subset/Physical_appearance.jsonl", 75155, "52d0bb5309eea987037148153662054d3a18e5d4412ed1a5b84e1b4ca318cda0"],
        ["bbq-subset/Race_ethnicity.jsonl", 78544, "3af28dccf900117b442d328eaf4532d90b1408088896d79bc23d5b52b8a2cd54"],
        ["bbq-subset/Race_x_SES.jsonl", 91928, "9de180a47eb9bc4abd09ceb00adefcbe88131f0f028f5842198ff93dd72bdebb"],
        ["bbq-subset/Race_x_gender.jsonl", 74077, "055b77ce89a379961e32ec300e95fec02116dc089eadec7f9dc35b37e4df5444"],
        ["bbq-subset/Religion.jsonl", 83172, "eab6aebcdf6350d89810d8b8f4edd03085636aa2e0750683c0defb95dcf8f105"],
        ["bbq-subset/SES.jsonl", 72817, "15c03b8d918b8573eaa94cdb408f3c7f7f146996398f495849301032ce0ff7b3"],
        ["bbq-subset/Sexual_orientation.jsonl", 74996, "68ba40f899341f26ecdb9e8829ff769c656fb459e768f231338c759ca5a3fdeb"],
      ],
      (p) => `${BBQ_SUBSET}/${basename(p)}`,
    ),
  },
  {
    name: "xstest",
    title: "XSTest v2 (450 prompts) and v1 (200 safe prompts) (Röttger et al. 2024)",
    licence: "CC-BY-4.0",
    source: "paul-rottger/exaggerated-safety@d7bb5bd (v2), @5fadc7f (v1)",
    files: [
      {
        path: "xstest/xstest_prompts.csv",
        url: `${XSTEST}/d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d/xstest_prompts.csv`,
        sha256: "11783fb294ed017473ee53c207d71f2161c7672c8d0b037501e78387f801cb5a",
        bytes: 38719,
      },
      {
        path: "xstest/xstest_prompts_v1.csv",
        url: `${XSTEST}/5fadc7ff1795f0f034483af69bdd95d2c7430761/xstest_prompts_v1.csv`,
        sha256: "6cac2f2e0ae268c020ff340d803f5601a442640b91d7eb586337eebef004e97b",
        bytes: 16047,
      },
    ],
  },
  {
    name: "jailbreak-prompts",
    title: "GCG transfer suffixes + refusal prefixes (Self-Correction Jailbreak/config.py), AutoDAN initial prompt",
    licence: "none stated",
    source: "derived from yifeiwang77/Self-Correction@435d592 (Jailbreak/config.py, Jailbreak/autodan/autodan_initial_prompt.txt)",
    note: "JSON written from the upstream Python/text files; no upstream byte copy exists, so fetch it from a mirror with --base-url.",
    files: files(
      [
        ["jailbreak-prompts/autodan_initial_prompt.json", 4985, "42368fc11fcf48714283d8b18dc8aa38bfd3e3a466f934202c39db2187de9360"],
        ["jailbreak-prompts/gcg_suffixes_self_correction.json", 3102, "9d90eb1c48144820bc45c21411fef9bfde90a3bf33b6e2c7e14bd65b850e18e3"],
      ],
      () => null,
    ),
  },
];

export const DATASET_NAMES = DATASETS.map((d) => d.name);

/** The dataset named `name` in `registry` (default: the built-in one), or a UserError listing the names. */
export function getDataset(name: string, registry: readonly DatasetSpec[] = DATASETS): DatasetSpec {
  const d = registry.find((x) => x.name === name.trim().toLowerCase());
  if (!d) throw new UserError(`unknown dataset '${name}'; available: ${registry.map((x) => x.name).join(", ")}, or 'all'`);
  return d;
}

/** Datasets for a CLI argument: one name, or `all`. */
export function resolveDatasets(name: string, registry: readonly DatasetSpec[] = DATASETS): DatasetSpec[] {
  return name.trim().toLowerCase() === "all" ? [...registry] : [getDataset(name, registry)];
}

