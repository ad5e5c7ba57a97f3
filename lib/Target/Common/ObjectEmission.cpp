//===- ObjectEmission.cpp - LLVM dialect to a shared object ---------------===//
//
// Entry-point wrappers, LLVM IR translation, optimization for the chosen
// CPU, object emission, and linking with the system compiler driver.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/Common/ObjectEmission.h"

#include "kiln/Runtime/ArtifactAbi.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/Builders.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/X86TargetParser.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

using namespace mlir;
using namespace mlir::kiln;

static constexpr llvm::StringLiteral kCInterfacePrefix = "_mlir_ciface_";

void mlir::kiln::addArtifactEntryPoints(ModuleOp module) {
  MLIRContext *ctx = module.getContext();
  OpBuilder builder(ctx);
  builder.setInsertionPointToEnd(module.getBody());
  Location loc = module.getLoc();
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  auto voidType = LLVM::LLVMVoidType::get(ctx);
  auto i32Type = builder.getI32Type();

  SmallVector<LLVM::LLVMFuncOp> interfaces;
  for (auto func : module.getOps<LLVM::LLVMFuncOp>())
    if (func.getName().starts_with(kCInterfacePrefix) && !func.isExternal())
      interfaces.push_back(func);

  for (LLVM::LLVMFuncOp callee : interfaces) {
    StringRef entry = callee.getName().drop_front(kCInterfacePrefix.size());
    // void kiln_entry_E(void **args): args[0] -> results, args[1..] ->
    // input and parameter descriptors, forwarded as the C interface's
    // pointer arguments.
    auto wrapper = LLVM::LLVMFuncOp::create(
        builder, loc, (KILN_ENTRY_PREFIX + entry).str(),
        LLVM::LLVMFunctionType::get(voidType, {ptrType}));
    OpBuilder::InsertionGuard guard(builder);
    Block *body = wrapper.addEntryBlock(builder);
    builder.setInsertionPointToStart(body);
    Value args = body->getArgument(0);
    auto calleeType = callee.getFunctionType();
    SmallVector<Value> operands;
    // The C interface takes the result pointer first when the function has
    // results; the runtime always reserves args[0] for it.
    auto original = module.lookupSymbol<LLVM::LLVMFuncOp>(entry);
    bool returnsValues =
        original &&
        !isa<LLVM::LLVMVoidType>(original.getFunctionType().getReturnType());
    unsigned firstSlot = returnsValues ? 0 : 1;
    for (unsigned i = 0; i < calleeType.getNumParams(); ++i) {
      Value index =
          LLVM::ConstantOp::create(builder, loc, builder.getI64Type(),
                                   builder.getI64IntegerAttr(firstSlot + i));
      Value slot = LLVM::GEPOp::create(builder, loc, ptrType, ptrType, args,
                                       ValueRange{index});
      operands.push_back(LLVM::LoadOp::create(builder, loc, ptrType, slot));
    }
    LLVM::CallOp::create(builder, loc, callee, operands);
    LLVM::ReturnOp::create(builder, loc, ValueRange{});
  }

  auto version =
      LLVM::LLVMFuncOp::create(builder, loc, KILN_ABI_VERSION_SYMBOL,
                               LLVM::LLVMFunctionType::get(i32Type, {}));
  Block *body = version.addEntryBlock(builder);
  builder.setInsertionPointToStart(body);
  Value one = LLVM::ConstantOp::create(
      builder, loc, i32Type,
      builder.getI32IntegerAttr(KILN_MODULE_ABI_VERSION));
  LLVM::ReturnOp::create(builder, loc, one);
}

namespace {
struct ResolvedTarget {
  std::string triple, cpu, features;
  const llvm::Target *target = nullptr;
};

llvm::Expected<ResolvedTarget> resolveTarget(const CPUTargetOptions &options) {
  static bool initialized = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)initialized;
  ResolvedTarget resolved;
  resolved.triple = llvm::sys::getDefaultTargetTriple();
  std::string error;
  resolved.target =
      llvm::TargetRegistry::lookupTarget(llvm::Triple(resolved.triple), error);
  if (!resolved.target)
    return llvm::createStringError("no LLVM target for '" + resolved.triple +
                                   "': " + error);
  if (options.cpu == "native") {
    resolved.cpu = llvm::sys::getHostCPUName().str();
    llvm::SmallVector<std::string> features;
    for (const auto &feature : llvm::sys::getHostCPUFeatures())
      features.push_back((feature.second ? "+" : "-") + feature.first().str());
    llvm::sort(features);
    resolved.features = llvm::join(features, ",");
  } else {
    // Refuse unknown names here; LLVM would only warn and ignore them.
    if (llvm::Triple(resolved.triple).isX86() &&
        llvm::X86::parseArchX86(options.cpu) == llvm::X86::CK_None)
      return llvm::createStringError(
          "unknown --cpu '" + options.cpu +
          "' (expected native, x86-64-v3, x86-64-v4 or another x86 CPU "
          "name such as znver4)");
    resolved.cpu = options.cpu;
  }
  return resolved;
}
} // namespace

llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
mlir::kiln::createCPUTargetMachine(const CPUTargetOptions &options,
                                  CPUTargetInfo *out) {
  auto resolved = resolveTarget(options);
  if (!resolved)
    return resolved.takeError();
  llvm::TargetOptions targetOptions;
  llvm::CodeGenOptLevel level =
      options.optLevel >= 3   ? llvm::CodeGenOptLevel::Aggressive
      : options.optLevel == 0 ? llvm::CodeGenOptLevel::None
                              : llvm::CodeGenOptLevel::Default;
  std::unique_ptr<llvm::TargetMachine> machine(
      resolved->target->createTargetMachine(
          llvm::Triple(resolved->triple), resolved->cpu, resolved->features,
          targetOptions, llvm::Reloc::PIC_, std::nullopt, level));
  if (!machine)
    return llvm::createStringError("cannot create a target machine for cpu '" +
                                   resolved->cpu + "'");
  if (out)
    *out = {resolved->cpu, resolved->triple, resolved->features};
  return machine;
}

namespace {
void registerTranslations(MLIRContext *context) {
  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerOpenMPDialectTranslation(registry);
  context->appendDialectRegistry(registry);
}

/// Gives a translated module the target's data layout and triple.
void setTarget(llvm::Module &llvmModule, llvm::TargetMachine &machine) {
  llvmModule.setDataLayout(machine.createDataLayout());
  llvmModule.setTargetTriple(machine.getTargetTriple());
  // LLVM prefers 256-bit vectors on many AVX-512 CPUs (Intel's server
  // parts among them) for the loops it vectorizes itself, the elementwise
  // ones the pipeline leaves scalar: asked for 512, the bf16 gpt2-small
  // train step ran 5-8% faster on an AMX Xeon (f32 unchanged).
  if (machine.getMCSubtargetInfo()->checkFeatures("+avx512f"))
    for (llvm::Function &function : llvmModule)
      if (!function.isDeclaration())
        function.addFnAttr("prefer-vector-width", "512");
}
} // namespace

llvm::Expected<std::unique_ptr<llvm::Module>> mlir::kiln::translateToLLVMIR(
    ModuleOp module, llvm::LLVMContext &llvmContext,
    const CPUTargetOptions &options, CPUTargetInfo *info,
    TimingScope *timing) {
  TimingScope none;
  TimingScope &parent = timing ? *timing : none;
  registerTranslations(module.getContext());
  CPUTargetInfo resolved;
  auto machine = createCPUTargetMachine(options, &resolved);
  if (!machine)
    return machine.takeError();
  TimingScope translating = parent.nest("translate to LLVM IR");
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, llvmContext, "kiln");
  translating.stop();
  if (!llvmModule)
    return llvm::createStringError("translation to LLVM IR failed");
  setTarget(*llvmModule, **machine);
  if (info)
    *info = resolved;
  return llvmModule;
}

namespace {
llvm::Error optimize(llvm::Module &llvmModule, const CPUTargetOptions &options,
                     llvm::TargetMachine &machine) {
  auto transformer =
      makeOptimizingTransformer(options.optLevel, /*sizeLevel=*/0, &machine);
  return transformer(&llvmModule);
}
} // namespace

llvm::Expected<std::unique_ptr<llvm::Module>> mlir::kiln::translateAndOptimize(
    ModuleOp module, llvm::LLVMContext &llvmContext,
    const CPUTargetOptions &options, CPUTargetInfo *info,
    TimingScope *timing) {
  auto llvmModule =
      translateToLLVMIR(module, llvmContext, options, info, timing);
  if (!llvmModule)
    return llvmModule.takeError();
  auto machine = createCPUTargetMachine(options, nullptr);
  if (!machine)
    return machine.takeError();
  TimingScope none;
  TimingScope optimizing = (timing ? *timing : none).nest("optimize LLVM IR");
  if (llvm::Error error = optimize(**llvmModule, options, **machine))
    return std::move(error);
  return llvmModule;
}

namespace {
bool isLocal(LLVM::Linkage linkage) {
  return linkage == LLVM::Linkage::Internal ||
         linkage == LLVM::Linkage::Private;
}

/// A local symbol used from another piece becomes a hidden global: one
/// definition for the whole shared object, invisible outside it.
template <typename SymbolOp> void exportSymbol(SymbolOp op) {
  if (!isLocal(op.getLinkage()))
    return;
  op.setLinkage(LLVM::Linkage::External);
  op.setVisibility_(LLVM::Visibility::Hidden);
}

/// Constant globals up to this size are copied into every piece that reads
/// them (LLVM's optimizer then sees their contents); larger ones are
/// defined once.
constexpr int64_t kMaxCopiedConstantBytes = 64 * 1024;

bool isSmallConstant(LLVM::GlobalOp global) {
  if (!global.getConstant() || !isLocal(global.getLinkage()))
    return false;
  Attribute value = global.getValueOrNull();
  // (The size of the data: a splat's raw data is one element.)
  if (auto elements = dyn_cast_if_present<DenseElementsAttr>(value))
    return elements.getElementType().isIntOrFloat() &&
           elements.getNumElements() *
                   elements.getElementType().getIntOrFloatBitWidth() / 8 <=
               kMaxCopiedConstantBytes;
  if (auto text = dyn_cast_if_present<StringAttr>(value))
    return static_cast<int64_t>(text.size()) <= kMaxCopiedConstantBytes;
  return false;
}

/// Moves the function definitions of `module` (LLVM dialect) into `count`
/// modules of about equal size by operation count (the first stays in
/// `module`, with every global and declaration), and gives each the
/// declarations of what it uses from the others. Returns the modules after
/// the first: none where `module` has fewer than two definitions or holds
/// an op this does not know how to split (a comdat, an alias), which then
/// stays whole.
SmallVector<OwningOpRef<ModuleOp>> splitModule(ModuleOp module,
                                               unsigned count) {
  SmallVector<OwningOpRef<ModuleOp>> parts;
  SmallVector<std::pair<LLVM::LLVMFuncOp, int64_t>> definitions;
  for (Operation &op : *module.getBody()) {
    if (auto func = dyn_cast<LLVM::LLVMFuncOp>(op)) {
      if (func.isExternal())
        continue;
      int64_t size = 0;
      func.walk([&](Operation *) { ++size; });
      definitions.emplace_back(func, size);
    } else if (!isa<LLVM::GlobalOp, LLVM::GlobalCtorsOp, LLVM::GlobalDtorsOp>(
                   op)) {
      // (Constructors, such as the AMX kernels' tile configuration, stay
      // in the first piece, with declarations of the functions they name.)
      return parts;
    }
  }
  count = std::min<unsigned>(count, definitions.size());
  if (count < 2)
    return parts;
  // Largest first, each to the lightest piece (ties to the earlier one,
  // so the split is the same on every run).
  llvm::stable_sort(definitions,
                    [](auto a, auto b) { return a.second > b.second; });
  SmallVector<ModuleOp> pieces = {module};
  for (unsigned i = 1; i < count; ++i) {
    parts.push_back(ModuleOp::create(module.getLoc()));
    (*parts.back())->setAttrs(module->getAttrDictionary());
    pieces.push_back(*parts.back());
  }
  SmallVector<int64_t> load(count, 0);
  for (auto [func, size] : definitions) {
    unsigned lightest =
        std::min_element(load.begin(), load.end()) - load.begin();
    load[lightest] += size;
    if (lightest != 0)
      func->moveBefore(pieces[lightest].getBody(),
                       pieces[lightest].getBody()->end());
  }

  // Where each symbol is defined (or, for a declaration, declared).
  llvm::StringMap<Operation *> owners;
  for (ModuleOp piece : pieces)
    for (Operation &op : *piece.getBody())
      if (auto name =
              op.getAttrOfType<StringAttr>(SymbolTable::getSymbolAttrName()))
        owners[name.getValue()] = &op;
  for (ModuleOp piece : pieces) {
    llvm::SetVector<StringAttr> used;
    if (auto uses = SymbolTable::getSymbolUses(&piece.getBodyRegion()))
      for (const SymbolTable::SymbolUse &use : *uses)
        used.insert(use.getSymbolRef().getRootReference());
    OpBuilder builder = OpBuilder::atBlockBegin(piece.getBody());
    for (StringAttr name : used) {
      Operation *owner = owners.lookup(name.getValue());
      if (!owner || owner->getParentOp() == piece)
        continue;
      if (auto func = dyn_cast<LLVM::LLVMFuncOp>(owner)) {
        // (A declaration is copied as it is: extern_weak stays weak.)
        exportSymbol(func);
        auto declaration =
            cast<LLVM::LLVMFuncOp>(builder.insert(func->cloneWithoutRegions()));
        if (!func.isExternal())
          declaration.setLinkage(LLVM::Linkage::External);
        continue;
      }
      auto global = cast<LLVM::GlobalOp>(owner);
      if (isSmallConstant(global)) {
        builder.clone(*global);
        continue;
      }
      exportSymbol(global);
      auto declaration = LLVM::GlobalOp::create(
          builder, global.getLoc(), global.getGlobalType(),
          global.getConstant(), LLVM::Linkage::External, global.getSymName(),
          Attribute(), global.getAlignment().value_or(0), global.getAddrSpace(),
          /*dsoLocal=*/false, global.getThreadLocal_());
      declaration.setVisibility_(global.getVisibility_());
    }
  }
  return parts;
}
} // namespace

llvm::Expected<std::vector<std::string>>
mlir::kiln::emitObjectFiles(ModuleOp module, const CPUTargetOptions &options,
                            llvm::StringRef objectPrefix, unsigned jobs,
                            TimingScope *timing) {
  TimingScope none;
  TimingScope &parent = timing ? *timing : none;
  if (jobs == 0) {
    jobs = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
    // KILN_CODEGEN_JOBS=N overrides (1: the whole module in one piece).
    if (const char *text = std::getenv("KILN_CODEGEN_JOBS"))
      if (unsigned value = 0;
          !llvm::StringRef(text).getAsInteger(10, value) && value > 0)
        jobs = std::min(value, 64u);
  }
  MLIRContext *context = module.getContext();
  registerTranslations(context);
  // Four pieces per thread: pieces of equal operation counts take unequal
  // times to compile, and threads that finish early take the next.
  SmallVector<OwningOpRef<ModuleOp>> parts =
      splitModule(module, jobs == 1 ? 1 : 4 * jobs);
  SmallVector<ModuleOp> pieces = {module};
  for (OwningOpRef<ModuleOp> &part : parts)
    pieces.push_back(*part);

  // Each piece is translated, optimized and compiled in a thread and an
  // LLVM context of its own. Translation only reads the MLIR context,
  // except where it creates attributes, which needs the context's
  // locking: without multithreading, the pieces translate one at a time.
  bool concurrent = context->isMultithreadingEnabled();
  std::mutex translation;
  unsigned threadCount = std::min<size_t>(jobs, pieces.size());
  TimingScope work =
      parent.nest("translate, optimize and generate machine code (" +
                  std::to_string(pieces.size()) + " pieces, " +
                  std::to_string(threadCount) + " threads)");
  std::vector<std::string> objects(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i)
    objects[i] = (objectPrefix + "." + llvm::Twine(i) + ".o").str();
  std::vector<std::optional<std::string>> errors(pieces.size());
  std::atomic<size_t> next = 0;
  auto compile = [&](size_t i) {
    llvm::LLVMContext llvmContext;
    auto machine = createCPUTargetMachine(options, nullptr);
    if (!machine) {
      errors[i] = llvm::toString(machine.takeError());
      return;
    }
    std::unique_ptr<llvm::Module> llvmModule;
    {
      std::unique_lock<std::mutex> lock(translation, std::defer_lock);
      if (!concurrent)
        lock.lock();
      TimingScope translating = work.nest("translate to LLVM IR");
      llvmModule = translateModuleToLLVMIR(pieces[i], llvmContext, "kiln");
    }
    if (!llvmModule) {
      errors[i] = "translation to LLVM IR failed";
      return;
    }
    setTarget(*llvmModule, **machine);
    TimingScope optimizing = work.nest("optimize LLVM IR");
    llvm::Error error = optimize(*llvmModule, options, **machine);
    optimizing.stop();
    if (!error) {
      TimingScope generating = work.nest("generate machine code");
      error = emitObjectFile(*llvmModule, options, objects[i]);
    }
    if (error)
      errors[i] = llvm::toString(std::move(error));
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < threadCount; ++t)
    threads.emplace_back([&] {
      for (size_t i; (i = next++) < pieces.size();)
        compile(i);
    });
  for (std::thread &thread : threads)
    thread.join();
  for (const std::optional<std::string> &error : errors)
    if (error)
      return llvm::createStringError(*error);
  return objects;
}

llvm::Error mlir::kiln::emitObjectFile(llvm::Module &llvmModule,
                                       const CPUTargetOptions &options,
                                       llvm::StringRef objectPath) {
  auto machine = createCPUTargetMachine(options, nullptr);
  if (!machine)
    return machine.takeError();
  std::error_code ec;
  llvm::raw_fd_ostream os(objectPath, ec, llvm::sys::fs::OF_None);
  if (ec)
    return llvm::createStringError("cannot write '" + objectPath +
                                   "': " + ec.message());
  llvm::legacy::PassManager pm;
  if ((*machine)->addPassesToEmitFile(pm, os, nullptr,
                                      llvm::CodeGenFileType::ObjectFile))
    return llvm::createStringError("the target cannot emit object files");
  pm.run(llvmModule);
  os.flush();
  if (os.has_error())
    return llvm::createStringError("writing '" + objectPath + "' failed");
  return llvm::Error::success();
}

llvm::Error
mlir::kiln::linkSharedLibrary(llvm::ArrayRef<std::string> objects,
                              llvm::StringRef libraryPath,
                              llvm::ArrayRef<std::string> sharedLibraries,
                              llvm::ArrayRef<std::string> supportLibraries) {
  auto cc = llvm::sys::findProgramByName("cc");
  if (!cc)
    return llvm::createStringError(
        "no C compiler driver 'cc' on PATH to link module.so (install gcc)");
  // The support libraries sit in ../lib next to the compiler's binary.
  std::string executable = llvm::sys::fs::getMainExecutable(
      nullptr, reinterpret_cast<void *>(&linkSharedLibrary));
  llvm::SmallVector<std::string> supports;
  for (const std::string &name : supportLibraries) {
    llvm::SmallString<256> support(llvm::sys::path::parent_path(executable));
    llvm::sys::path::append(support, "..", "lib", name);
    if (!llvm::sys::fs::exists(support))
      return llvm::createStringError("a module support library is missing: '" +
                                     support + "'");
    supports.push_back(std::string(support));
  }
  llvm::SmallVector<llvm::StringRef> args = {*cc, "-shared", "-o",
                                             libraryPath};
  for (const std::string &object : objects)
    args.push_back(object);
  for (const std::string &support : supports)
    args.push_back(support);
  for (const std::string &library : sharedLibraries)
    args.push_back(library);
  args.append({"-lm", "-Wl,-rpath,$ORIGIN",
               // Calls between the module's own functions bind to them, not
               // to a same-named symbol loaded earlier: an entry point
               // named `random` or `log` called from its C interface in
               // another partition went to libc's.
               "-Wl,-Bsymbolic",
               // Every undefined symbol must be resolved now, not when the
               // runtime loads the module.
               "-Wl,--no-undefined"});
  std::string error;
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, std::nullopt,
                                                std::nullopt};
  int status = llvm::sys::ExecuteAndWait(*cc, args, std::nullopt, redirects, 0,
                                         0, &error);
  if (status != 0)
    return llvm::createStringError("linking '" + libraryPath + "' with '" +
                                   *cc + "' failed" +
                                   (error.empty() ? "" : ": " + error));
  return llvm::Error::success();
}
