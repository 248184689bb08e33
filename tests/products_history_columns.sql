-- The history's product headers the project unpivots (macro history_product_columns) are
-- exactly the products seed's history_column values: returns a header either side lacks.
with

seeded as (

    select history_column from {{ ref('products') }}

),

listed as (

    select unnest(array[
        {%- for p in history_product_columns() %}
            '{{ p }}'{% if not loop.last %},{% endif %}
        {%- endfor %}
    ]) as history_column

)

select
    coalesce(seeded.history_column, listed.history_column) as history_column,
    seeded.history_column is null as missing_from_seed,
    listed.history_column is null as missing_from_macro
from seeded
full outer join listed on seeded.history_column = listed.history_column
where seeded.history_column is null or listed.history_column is null
