{#-
    The on-run-end hook: after every dbt command, append to schema validation what Mary
    needs to see which rules failed on which source rows, run after run:

    validation.runs            one row per dbt invocation (id, command, when, counts, and
                               reconciliation_note: why a run recorded no reconciliation)
    validation.rule_results    one row per business rule tested in the run (seeds/business_rules.csv:
                               tests with meta rule_id): rows checked, rows failing, status
    validation.exceptions      one row per failing source row per rule (the test's failing rows,
                               whole) and per quarantined row (customer_quarantine,
                               delivery_quarantine; the reason is the code): file, sheet, row,
                               layout, the model's column and value, and the source header and
                               cell as written (the column map, seeds/source_columns.csv), the
                               row as jsonb and its fingerprint
    validation.reconciliation  validation.source_reconciliation, copied per run that built it
    validation.reviews         Mary's decisions (`luckygas review`), never written here

    History is kept: nothing is updated or deleted, every row carries its run_id (dbt's
    invocation_id). The views, recreated after every run so no `drop ... cascade` of dbt's
    can take them for good: validation.rule_status (each rule's latest result, and
    review_status), validation.latest_exceptions (each rule's failing rows as of its latest
    result and the newest quarantine, with the current review of each), validation.
    current_reviews and validation.latest_reconciliation (the newest recorded, with its run).
    A test may return column_name, value, source_header, source_value (what the exception
    names) and review_basis (what a review of its row is about) beside the row.
-#}
{% macro record_validation(results) -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set run_id = invocation_id -%}
    {%- set rules = {} -%}
    {%- set catalogue = validation_relation('business_rules') -%}
    {%- if catalogue is not none -%}
        {%- set fields = ['entity', 'severity', 'column_name', 'description_zh',
                          'description_en'] -%}
        {%- for row in run_query(
            'select rule_id, ' ~ fields | join(', ') ~ ' from ' ~ catalogue).rows -%}
            {%- set rule = {} -%}
            {%- for field in fields -%}
                {%- do rule.update({field: row[field]}) -%}
            {%- endfor -%}
            {%- do rules.update({row['rule_id']: rule}) -%}
        {%- endfor -%}
    {%- endif -%}
    {#- the column map (seeds/source_columns.csv) and the raw tables' layouts: where a model
        column comes from, to name the source header and the cell as written -#}
    {%- set column_map = validation_relation('source_columns') -%}
    {%- set raw_tables = validation_relation('raw_tables') -%}
    {%- set products = validation_relation('products') -%}
    {#- the quarantine reasons (seeds/quarantine_reasons.csv): the column each one's
        exceptions name -#}
    {%- set reasons = validation_relation('quarantine_reasons') -%}
    {%- set reconciliation_built = results
        | selectattr('node.name', 'equalto', 'source_reconciliation')
        | selectattr('status', 'equalto', 'success') | list | length > 0 -%}

    create schema if not exists validation;

    create table if not exists validation.runs (
        run_id text primary key,
        command text,
        target text,
        started_at timestamptz,
        finished_at timestamptz not null default now(),
        nodes integer,
        failed integer,
        warned integer
    );

    create table if not exists validation.rule_results (
        run_id text not null references validation.runs (run_id),
        rule_id text not null,
        test_name text not null,
        entity text,
        severity text,
        description_zh text,
        description_en text,
        model text,
        rows_checked bigint,
        rows_failing bigint,
        status text not null,
        checked_at timestamptz not null default now(),
        primary key (run_id, test_name)
    );

    create table if not exists validation.exceptions (
        run_id text not null references validation.runs (run_id),
        kind text not null check (kind in ('rule', 'quarantine')),
        code text not null,
        severity text,
        entity text,
        source_file text,
        source_sheet text,
        source_row integer,
        column_name text,
        value text,
        client_code text,
        record_key text,
        record jsonb,
        recorded_at timestamptz not null default now()
    );
    create index if not exists exceptions_run_code on validation.exceptions (run_id, code);
    create index if not exists exceptions_source
        on validation.exceptions (source_file, source_sheet, source_row);

    create table if not exists validation.reconciliation (
        run_id text not null references validation.runs (run_id),
        entity text,
        source_file text,
        source_sheet text,
        rows_read bigint,
        final bigint,
        merged bigint,
        quarantined bigint,
        difference bigint,
        recorded_at timestamptz not null default now()
    );

    -- columns added after the first release: a database built before keeps its history
    alter table validation.runs add column if not exists reconciliation_note text;
    alter table validation.exceptions add column if not exists source_header text;
    alter table validation.exceptions add column if not exists source_value text;
    alter table validation.exceptions add column if not exists layout text;
    alter table validation.exceptions add column if not exists fingerprint text;

    -- Mary's decisions on exceptions, kept across rebuilds: append-only, the newest row per
    -- (code, file, sheet, row) is the current one; it applies while the exception's
    -- fingerprint is the one she saw (a changed source row is open again)
    create table if not exists validation.reviews (
        review_id bigserial primary key,
        code text not null,
        source_file text not null,
        source_sheet text not null,
        source_row integer not null,
        fingerprint text not null,
        decision text not null check (decision in ('accepted', 'expected_fixed', 'withdrawn')),
        note text,
        reviewer text not null,
        reviewed_at timestamptz not null default now()
    );
    alter table validation.reviews add column if not exists review_key text;
    create index if not exists reviews_source
        on validation.reviews (code, source_file, source_sheet, source_row);

    -- the row as the pipeline read it, without what changes on every load (load ids)
    create or replace function validation.record_fingerprint(record jsonb) returns text
    language sql immutable as $fingerprint$
        select md5(coalesce(jsonb_object_agg(field.key, field.value), '{}'::jsonb)::text)
        from jsonb_each(record) as field
        where field.key not like '%load\_id' and field.key not like '%loaded\_at'
    $fingerprint$;

    insert into validation.runs (
        run_id, command, target, started_at, nodes, failed, warned, reconciliation_note
    )
    values (
        '{{ run_id }}',
        '{{ flags.WHICH }}',
        '{{ target.name }}',
        '{{ run_started_at }}',
        {{ results | length }},
        {{ results | selectattr('status', 'in', ['fail', 'error']) | list | length }},
        {{ results | selectattr('status', 'equalto', 'warn') | list | length }},
        {%- if reconciliation_built %}
        null
        {%- else %}
        'not recorded: this command did not build validation.source_reconciliation (the latest'
        ' reconciliation is in validation.latest_reconciliation, with the run it comes from)'
        {%- endif %}
    )
    on conflict (run_id) do nothing;

    {% for result in results
        if result.node.resource_type == 'test' and result.node.config.meta.get('rule_id') -%}
        {%- set node = result.node -%}
        {%- set rule_id = node.config.meta['rule_id'] -%}
        {%- set unknown = {'entity': none, 'severity': node.config.severity | lower,
            'column_name': none, 'description_zh': none, 'description_en': none} -%}
        {%- set rule = rules.get(rule_id, unknown) -%}
        {%- set models = [] -%}
        {%- for dependency in node.depends_on.nodes if dependency.startswith('model.') -%}
            {%- do models.append(dependency) -%}
        {%- endfor -%}
        {%- set checked = none -%}
        {%- if models | length == 1 -%}
            {%- set checked = validation_relation(graph.nodes[models[0]].name) -%}
        {%- endif -%}
        {#- rows checked: the tested model's, or for a rule over several models the rows of
            those named in meta rows_checked_in (the source rows it accounts for) -#}
        {%- set counts = [] -%}
        {%- if checked is not none -%}
            {%- do counts.append('(select count(*) from ' ~ checked ~ ')') -%}
        {%- endif -%}
        {%- for name in node.config.meta.get('rows_checked_in', []) -%}
            {%- set relation = validation_relation(name) -%}
            {%- if relation is not none and checked is none -%}
                {%- do counts.append('(select count(*) from ' ~ relation ~ ')') -%}
            {%- endif -%}
        {%- endfor -%}
        insert into validation.rule_results (
            run_id, rule_id, test_name, entity, severity, description_zh, description_en,
            model, rows_checked, rows_failing, status
        )
        values (
            '{{ run_id }}',
            '{{ rule_id }}',
            '{{ node.name }}',
            {{ validation_literal(rule.entity) }},
            {{ validation_literal(rule.severity) }},
            {{ validation_literal(rule.description_zh) }},
            {{ validation_literal(rule.description_en) }},
            {{ validation_literal(checked.identifier if checked is not none else none) }},
            {{ counts | join(' + ') if counts else 'null' }},
            {{ result.failures if result.failures is not none else 'null' }},
            '{{ result.status }}'
        )
        on conflict do nothing;

        {% if result.status in ['fail', 'warn'] and result.failures -%}
        {%- set model_name = checked.identifier if checked is not none else none -%}
        {%- set rule_column = rule.column_name -%}
        {%- set several = rule_column and '*' in rule_column and rule_column != '*' -%}
        insert into validation.exceptions (
            run_id, kind, code, severity, entity, source_file, source_sheet, source_row,
            column_name, value, source_header, source_value, layout, client_code, record_key,
            record, fingerprint
        )
        {#- materialized: each failing row made jsonb once (inlined, to_jsonb of the whole
            row was evaluated again inside every lookup below, for every row it scans) -#}
        with failing as materialized (
            select
                rows.j,
                {{ validation_layout(raw_tables, "rows.j ->> 'source_file'",
                    "rows.j ->> 'source_sheet'") }} as layout
                {%- if not several %},
                {{ validation_literal(model_name ~ '.') }} || coalesce(
                    rows.j ->> 'column_name', {{ validation_literal(rule_column) }}
                ) as model_column
                {%- endif %}
            from (
                select to_jsonb(tested) as j
                from ({{ node.compiled_code }}) as tested
                offset 0
            ) as rows
        )
        {%- if not several %},

        {#- the column map looked up once per (layout, model column) the failing rows name,
            not once per row -#}
        labels as materialized (
            select
                keys.layout,
                keys.model_column,
                {{ validation_header(column_map, 'keys.layout', 'keys.model_column') }} as header,
                {{ validation_header(column_map, none, 'keys.model_column') }} as header_any,
                {{ validation_written(column_map, 'keys.layout', 'keys.model_column') }}
                    as written,
                {{ validation_written(column_map, none, 'keys.model_column') }} as written_any
            from (select distinct failing.layout, failing.model_column from failing) as keys
        )
        {%- endif %}

        select
            '{{ run_id }}',
            'rule',
            '{{ rule_id }}',
            {{ validation_literal(rule.severity) }},
            {{ validation_literal(rule.entity) }},
            failing.j ->> 'source_file',
            failing.j ->> 'source_sheet',
            (failing.j ->> 'source_row')::integer,
            coalesce(failing.j ->> 'column_name', {{ validation_literal(rule_column) }}),
            {% if several -%}
            {#- a rule over several columns (*_word): every one that holds a value -#}
            {%- set pattern = rule_column | replace('_', '\\_') | replace('*', '%') -%}
            (
                select string_agg(field.key || '=' || field.value, '; ' order by field.key)
                from jsonb_each_text(failing.j) as field
                where field.key like {{ validation_literal(pattern) }} and field.value is not null
            ),
            coalesce(failing.j ->> 'source_header', (
                select string_agg(
                    coalesce({{ validation_header(column_map, 'failing.layout',
                        validation_literal(model_name ~ '.') ~ ' || field.key') }}, field.key),
                    '; ' order by field.key)
                from jsonb_each_text(failing.j) as field
                where field.key like {{ validation_literal(pattern) }} and field.value is not null
            )),
            coalesce(failing.j ->> 'source_value', (
                select string_agg(
                    coalesce({{ validation_header(column_map, 'failing.layout',
                        validation_literal(model_name ~ '.') ~ ' || field.key') }}, field.key)
                    || '=' || field.value,
                    '; ' order by field.key)
                from jsonb_each_text(failing.j) as field
                where field.key like {{ validation_literal(pattern) }} and field.value is not null
            )),
            {%- else %}
            coalesce(failing.j ->> 'value', failing.j ->> {{ validation_literal(rule_column) }}),
            {#- the row's own layout first; else the layout of another source merged into
                the record (the app's status of a history+app delivery) -#}
            coalesce(failing.j ->> 'source_header', labels.header, labels.header_any),
            coalesce(
                failing.j ->> 'source_value',
                {{ validation_cells('labels.written', 'failing.j') }},
                {{ validation_cells('labels.written_any', 'failing.j') }},
                failing.j ->> 'value',
                failing.j ->> {{ validation_literal(rule_column) }}
            ),
            {%- endif %}
            failing.layout,
            failing.j ->> 'client_code',
            coalesce(failing.j ->> 'delivery_key', failing.j ->> 'client_code'),
            failing.j,
            {#- a test may name what a review of its row is about (review_basis): the
                customer's details for C16, not its delivery counts -#}
            validation.record_fingerprint(coalesce(failing.j -> 'review_basis', failing.j))
        from failing
        {%- if not several %}
        left join labels
            on
                labels.layout is not distinct from failing.layout
                and labels.model_column is not distinct from failing.model_column
        {%- endif %};
        {%- endif %}
    {% endfor %}

    {%- set customer_quarantine = validation_relation('customer_quarantine') -%}
    {%- set delivery_quarantine = validation_relation('delivery_quarantine') -%}
    {%- set reconciliation = validation_relation('source_reconciliation') -%}
    {%- set built = results | selectattr('node.resource_type', 'in', ['model', 'test']) | list -%}
    {%- set marts_touched = built | length > 0 -%}
    {% if marts_touched and customer_quarantine is not none -%}
    insert into validation.exceptions (
        run_id, kind, code, severity, entity, source_file, source_sheet, source_row,
        column_name, value, source_header, source_value, layout, client_code, record_key,
        record, fingerprint
    )
    select
        '{{ run_id }}', 'quarantine', q.reason, 'error', 'customer',
        q.source_file, q.source_sheet, q.source_row,
        'client_code',
        q.client_code_raw,
        coalesce(
            {{ validation_header(column_map, 'q.table_layout', "'customers.client_code'") }},
            case when q.source_system = 'legacy_app' then 'client_code' else '客戶' end
        ),
        q.client_code_raw,
        q.table_layout,
        null, q.client_code_raw, q.j, validation.record_fingerprint(q.j)
    from (
        select
            quarantined.*,
            to_jsonb(quarantined) as j,
            {{ validation_layout(raw_tables, 'quarantined.source_file',
                'quarantined.source_sheet') }} as table_layout
        from {{ customer_quarantine }} as quarantined
        offset 0  -- not inlined: each row made jsonb once
    ) as q;
    {%- endif %}
    {% if marts_touched and delivery_quarantine is not none -%}
    insert into validation.exceptions (
        run_id, kind, code, severity, entity, source_file, source_sheet, source_row,
        column_name, value, source_header, source_value, layout, client_code, record_key,
        record, fingerprint
    )
    select
        '{{ run_id }}', 'quarantine', q.reason, 'error', 'delivery',
        q.source_file, q.source_sheet, q.source_row,
        q.model_column,
        q.value,
        coalesce(
            {{ validation_header(column_map, 'q.table_layout', "'deliveries.' || q.model_column") }},
            {%- if products is not none %}
            case when q.model_column = 'quantities' then (
                select string_agg(coalesce(item.header, item.code), ', ' order by item.code)
                from {{ validation_items('q', products) }} as item
            ) end,
            {%- endif %}
            case
                when q.model_column = 'delivery_date' and q.table_layout = 'history_daily'
                    then '最後十次日期'
                when q.model_column = 'delivery_date' and q.source_system = 'app'
                    then 'scheduled_date'
                when q.model_column = 'delivery_date' then '交易日期'
                when q.model_column = 'app_status' then 'status'
                when q.source_system = 'app' then 'client_id'
                else '客戶'
            end
        ),
        {%- if products is not none %}
        case when q.model_column = 'quantities' then (
            select string_agg(coalesce(item.header, item.code) || '=' || item.quantity, ', '
                order by item.code)
            from {{ validation_items('q', products) }} as item
        ) else q.value end,
        {%- else %}
        q.value,
        {%- endif %}
        q.table_layout,
        q.client_code, q.client_code_raw, q.j, validation.record_fingerprint(q.j)
    from (
        select
            quarantined.*,
            to_jsonb(quarantined) as j,
            {{ validation_layout(raw_tables, 'quarantined.source_file',
                'quarantined.source_sheet') }} as table_layout,
            {%- if reasons is not none %}
            coalesce(reason.model_column, 'client_code') as model_column,
            to_jsonb(quarantined) ->> coalesce(reason.value_column, 'client_code_raw') as value
            {%- else %}
            'client_code' as model_column,
            quarantined.client_code_raw as value
            {%- endif %}
        from {{ delivery_quarantine }} as quarantined
        {%- if reasons is not none %}
        left join {{ reasons }} as reason on quarantined.reason = reason.reason
        {%- endif %}
        offset 0  -- not inlined: each row made jsonb once
    ) as q;
    {%- endif %}
    {% if reconciliation_built and reconciliation is not none -%}
    insert into validation.reconciliation (
        run_id, entity, source_file, source_sheet, rows_read, final, merged, quarantined, difference
    )
    select
        '{{ run_id }}', entity, source_file, source_sheet, rows_read, final, merged,
        quarantined, difference
    from {{ reconciliation }};
    {%- endif %}

    -- each review as it stands: the newest decision per code and review key (a rule's
    -- record, wherever its row is now; or a quarantined source row)
    create or replace view validation.current_reviews as
    select distinct on (code, current_key) *
    from (
        select
            reviews.*,
            coalesce(
                reviews.review_key,
                {{ validation_row_key('reviews') }}
            ) as current_key
        from validation.reviews as reviews
    ) as keyed
    order by code, current_key, reviewed_at desc, review_id desc;

    -- each rule's failing rows from its latest result, and the newest quarantine; with
    -- Mary's decision on the row while it is the row she reviewed
    create or replace view validation.latest_exceptions as
    with latest as (
        select exceptions.*
        from validation.exceptions as exceptions
        inner join (
            select distinct on (rule_id) run_id, rule_id
            from validation.rule_results
            order by rule_id, checked_at desc, test_name
        ) as status
            on exceptions.run_id = status.run_id and exceptions.code = status.rule_id
        where exceptions.kind = 'rule'
        union all
        select *
        from validation.exceptions
        where kind = 'quarantine' and run_id = (
            select run_id from validation.exceptions
            where kind = 'quarantine'
            order by recorded_at desc
            limit 1
        )
    )
    select
        latest.*,
        reviews.decision as review_decision,
        reviews.note as review_note,
        reviews.reviewer,
        reviews.reviewed_at,
        {{ validation_review_key('latest') }} as review_key
    from latest
    left join validation.current_reviews as reviews
        on
            latest.code = reviews.code
            and {{ validation_review_key('latest') }} = reviews.current_key
            and latest.fingerprint = reviews.fingerprint
            and reviews.decision <> 'withdrawn';

    -- each rule's latest result; a warn rule whose every failing row Mary accepted reads
    -- as accepted
    create or replace view validation.rule_status as
    select
        status.*,
        case
            when status.status = 'warn' and not exists (
                select 1 from validation.latest_exceptions as open_rows
                where
                    open_rows.kind = 'rule' and open_rows.code = status.rule_id
                    and open_rows.review_decision is distinct from 'accepted'
            ) then 'accepted'
        end as review_status
    from (
        select distinct on (rule_id) *
        from validation.rule_results
        order by rule_id, checked_at desc, test_name
    ) as status;

    -- the newest reconciliation recorded, with the run it comes from
    create or replace view validation.latest_reconciliation as
    select runs.finished_at as run_finished_at, runs.command, reconciliation.*
    from validation.reconciliation as reconciliation
    inner join validation.runs as runs on reconciliation.run_id = runs.run_id
    where reconciliation.run_id = (
        select run_id from validation.reconciliation order by recorded_at desc limit 1
    );
{%- endmacro %}
